package wire

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestDecodeGrammar(t *testing.T) {
	const o = "00000000000000ff"
	tests := []struct {
		name    string
		in      string
		want    Message
		wantErr error
	}{
		{"empty payload clears", "", Message{Raw: true, Ops: []Op{{Clear: true}}}, nil},
		{"raw key", "user:1", Message{Raw: true, Ops: []Op{{Keys: []string{"user:1"}}}}, nil},
		{"raw key with NUL not magic", "\x00iv", Message{Raw: true, Ops: []Op{{Keys: []string{"\x00iv"}}}}, nil},
		{"no ops", Magic + "1 " + o + " 0", Message{Version: 1, Origin: 255}, nil},
		{"clear", Magic + "1 " + o + " 7 C", Message{Version: 1, Origin: 255, Seq: 7, Ops: []Op{{Clear: true}}}, nil},
		{"keys", Magic + "1 " + o + " 18446744073709551615 D 1:a 3:b c 0:", Message{Version: 1, Origin: 255, Seq: 1<<64 - 1, Ops: []Op{{Keys: []string{"a", "b c", ""}}}}, nil},
		{"key with digits and spaces", Magic + "1 " + o + " 1 D 4: 1:x C", Message{Version: 1, Origin: 255, Seq: 1, Ops: []Op{{Keys: []string{" 1:x"}}, {Clear: true}}}, nil},
		{"empty delete op", Magic + "1 " + o + " 1 D D 1:k", Message{Version: 1, Origin: 255, Seq: 1, Ops: []Op{{}, {Keys: []string{"k"}}}}, nil},
		{"binary key", Magic + "1 " + o + " 1 D 2:\x00\xff", Message{Version: 1, Origin: 255, Seq: 1, Ops: []Op{{Keys: []string{"\x00\xff"}}}}, nil},
		{"newer version", Magic + "2 whatever", Message{Version: 2}, ErrUnknownVersion},
		{"newer version alone", Magic + "17", Message{Version: 17}, ErrUnknownVersion},
		{"magic only", Magic, Message{}, ErrMalformed},
		{"version zero", Magic + "0 " + o + " 1", Message{}, ErrMalformed},
		{"version leading zero", Magic + "01 " + o + " 1", Message{}, ErrMalformed},
		{"version too long", Magic + "1234567890 x", Message{}, ErrMalformed},
		{"version junk", Magic + "1x " + o + " 1", Message{}, ErrMalformed},
		{"no header", Magic + "1", Message{}, ErrMalformed},
		{"short origin", Magic + "1 ff 1", Message{}, ErrMalformed},
		{"uppercase origin", Magic + "1 00000000000000FF 1", Message{}, ErrMalformed},
		{"no seq", Magic + "1 " + o, Message{}, ErrMalformed},
		{"seq leading zero", Magic + "1 " + o + " 01", Message{}, ErrMalformed},
		{"seq overflow", Magic + "1 " + o + " 18446744073709551616", Message{}, ErrMalformed},
		{"trailing space", Magic + "1 " + o + " 1 ", Message{}, ErrMalformed},
		{"double space", Magic + "1 " + o + " 1  C", Message{}, ErrMalformed},
		{"unknown op", Magic + "1 " + o + " 1 X", Message{}, ErrMalformed},
		{"key too long", Magic + "1 " + o + " 1 D 5:abc", Message{}, ErrMalformed},
		{"key length huge", Magic + "1 " + o + " 1 D 99999999999999999999:a", Message{}, ErrMalformed},
		{"key no colon", Magic + "1 " + o + " 1 D 3abc", Message{}, ErrMalformed},
		{"key length leading zero", Magic + "1 " + o + " 1 D 01:a", Message{}, ErrMalformed},
		{"junk after key", Magic + "1 " + o + " 1 D 1:ab", Message{}, ErrMalformed},
		{"junk after clear", Magic + "1 " + o + " 1 Cx", Message{}, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode([]byte(tt.in))
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("Decode(%q) error = %v, want %v", tt.in, err, tt.wantErr)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "wire: ") {
				t.Errorf("error %q does not start with %q", err, "wire: ")
			}
			if !Equal(got, tt.want) {
				t.Errorf("Decode(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			if err == nil && !got.Raw {
				if re := AppendMessage(nil, got); !bytes.Equal(re, []byte(tt.in)) {
					t.Errorf("re-encoded %q, want %q", re, tt.in)
				}
			}
		})
	}
}

func TestDecodeTooLarge(t *testing.T) {
	p := make([]byte, MaxPayloadBytes+1)
	copy(p, Magic)
	if _, err := Decode(p); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Decode(%d bytes) error = %v, want ErrTooLarge", len(p), err)
	}
	p[0] = 'x' // a raw key of any size is fine
	if m, err := Decode(p); err != nil || !m.Raw || len(m.Ops[0].Keys[0]) != len(p) {
		t.Fatalf("raw Decode error = %v, raw=%v", err, m.Raw)
	}
}

func TestAppendMessageExample(t *testing.T) {
	got := AppendMessage(nil, Message{Origin: 0x9f3a61c07e2b4d18, Seq: 42, Ops: []Op{{Keys: []string{"user:1", "order:7 a"}}}})
	want := "\x00ivc1 9f3a61c07e2b4d18 42 D 6:user:1 9:order:7 a"
	if string(got) != want {
		t.Fatalf("AppendMessage = %q, want %q", got, want)
	}
}

func TestAppendBatches(t *testing.T) {
	big := strings.Repeat("x", 500)
	tests := []struct {
		name      string
		clear     bool
		keys      []string
		maxBytes  int
		wantMsgs  int
		wantClear bool
	}{
		{"empty", false, nil, 100, 0, false},
		{"clear subsumes keys", true, []string{"a", "b"}, 100, 1, true},
		{"one message", false, []string{"a", "b", "c"}, 100, 1, false},
		{"split", false, []string{"key:0001", "key:0002", "key:0003", "key:0004", "key:0005", "key:0006"}, 50, 3, false},
		{"oversized key alone", false, []string{"a", big, "b"}, 60, 3, false},
		{"tiny limit one key each", false, []string{"a", "b", "c"}, 1, 3, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst, buf := [][]byte{[]byte("keep")}, []byte("prefix")
			dst, buf, next := AppendBatches(dst, buf, 7, 10, tt.clear, tt.keys, tt.maxBytes)
			if string(dst[0]) != "keep" || string(buf[:6]) != "prefix" {
				t.Fatalf("existing contents changed: %q %q", dst[0], buf[:6])
			}
			payloads := dst[1:]
			if len(payloads) != tt.wantMsgs || next != 10+uint64(tt.wantMsgs) {
				t.Fatalf("got %d payloads, next seq %d; want %d, %d", len(payloads), next, tt.wantMsgs, 10+tt.wantMsgs)
			}
			var keys []string
			for i, p := range payloads {
				m, err := Decode(p)
				if err != nil {
					t.Fatalf("payload %d %q: %v", i, p, err)
				}
				if m.Origin != 7 || m.Seq != 10+uint64(i) {
					t.Errorf("payload %d origin/seq = %d/%d, want 7/%d", i, m.Origin, m.Seq, 10+i)
				}
				if len(p) > tt.maxBytes && len(m.Ops[0].Keys) != 1 {
					t.Errorf("payload %d is %d bytes > %d with %d keys", i, len(p), tt.maxBytes, len(m.Ops[0].Keys))
				}
				if m.Ops[0].Clear != tt.wantClear {
					t.Errorf("payload %d clear = %v, want %v", i, m.Ops[0].Clear, tt.wantClear)
				}
				keys = append(keys, m.Ops[0].Keys...)
			}
			if !tt.clear && fmt.Sprint(keys) != fmt.Sprint(tt.keys) && len(tt.keys) > 0 {
				t.Errorf("keys = %q, want %q", keys, tt.keys)
			}
		})
	}
}

func TestAppendBatchesReuseNoAllocs(t *testing.T) {
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("user:%d", i)
	}
	var dst [][]byte
	var buf []byte
	dst, buf, _ = AppendBatches(dst, buf, 1, 1, false, keys, 1024)
	allocs := testing.AllocsPerRun(20, func() {
		dst, buf, _ = AppendBatches(dst[:0], buf[:0], 1, 1, false, keys, 1024)
	})
	if allocs != 0 {
		t.Errorf("AppendBatches with reused buffers: %v allocs, want 0", allocs)
	}
}

func seedCorpus() [][]byte {
	var seeds [][]byte
	for _, s := range []string{"", "user:1", Magic, Magic + "1", Magic + "2 x", Magic + "1 0000000000000001 1 C",
		Magic + "1 0000000000000001 1 D 1:a 2:bc", Magic + "1 0000000000000001 1 D 9:a", Magic + "1 ffffffffffffffff 0 D C D 0:"} {
		seeds = append(seeds, []byte(s))
	}
	dst, _, _ := AppendBatches(nil, nil, 42, 1, false, []string{"a", "b b", "\x00ivc", strings.Repeat("z", 100)}, 40)
	return append(seeds, dst...)
}

func FuzzDecode(f *testing.F) {
	for _, s := range seedCorpus() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		m, err := Decode(p)
		if err != nil {
			if !IsEnvelope(p) {
				t.Fatalf("raw payload %q failed: %v", p, err)
			}
			return
		}
		if m.Raw {
			if IsEnvelope(p) {
				t.Fatalf("envelope %q decoded as raw", p)
			}
			return
		}
		re := AppendMessage(nil, m)
		m2, err := Decode(re)
		if err != nil || !Equal(m, m2) {
			t.Fatalf("re-encoding of %q = %q decodes to %+v, %v; want %+v", p, re, m2, err, m)
		}
		if !bytes.Equal(re, p) {
			t.Fatalf("encoding is not canonical: %q re-encodes to %q", p, re)
		}
	})
}

func FuzzRoundTrip(f *testing.F) {
	f.Add(uint64(1), uint64(1), false, "a\x00b", 64)
	f.Add(uint64(1<<63), uint64(1<<64-1), true, "", 1)
	f.Add(uint64(0), uint64(0), false, strings.Repeat("k ", 100), 30)
	f.Fuzz(func(t *testing.T, origin, seq uint64, clear bool, joined string, maxBytes int) {
		keys := strings.Split(joined, " ")
		payloads, _, next := AppendBatches(nil, nil, origin, seq, clear, keys, maxBytes)
		var got []string
		for i, p := range payloads {
			m, err := Decode(p)
			if err != nil {
				t.Fatalf("payload %d %q: %v", i, p, err)
			}
			if m.Origin != origin || m.Seq != seq+uint64(i) || len(m.Ops) != 1 {
				t.Fatalf("payload %d = %+v, want origin %d seq %d", i, m, origin, seq+uint64(i))
			}
			if m.Ops[0].Clear != clear {
				t.Fatalf("payload %d clear = %v, want %v", i, m.Ops[0].Clear, clear)
			}
			got = append(got, m.Ops[0].Keys...)
		}
		if next != seq+uint64(len(payloads)) {
			t.Fatalf("next = %d, want %d", next, seq+uint64(len(payloads)))
		}
		if !clear && strings.Join(got, " ") != joined {
			t.Fatalf("keys %q, want %q", got, keys)
		}
	})
}

func TestDecodeRandomNeverPanics(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		p := make([]byte, r.IntN(200))
		for j := range p {
			p[j] = " 0123456789:CD\x00ivcab"[r.IntN(19)]
		}
		if r.IntN(2) == 0 {
			p = append([]byte(Magic+"1 0000000000000001 "), p...)
		}
		_, _ = Decode(p)
	}
}

func BenchmarkAppendBatches(b *testing.B) {
	keys := make([]string, 100)
	for i := range keys {
		keys[i] = fmt.Sprintf("user:%d", i)
	}
	var dst [][]byte
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		dst, buf, _ = AppendBatches(dst[:0], buf[:0], 1, 1, false, keys, 64<<10)
	}
}

func BenchmarkDecode(b *testing.B) {
	keys := make([]string, 100)
	for i := range keys {
		keys[i] = fmt.Sprintf("user:%d", i)
	}
	p, _, _ := AppendBatches(nil, nil, 1, 1, false, keys, 64<<10)
	b.ReportAllocs()
	for b.Loop() {
		_, _ = Decode(p[0])
	}
}

func TestPeekOrigin(t *testing.T) {
	const o = "9f3a61c07e2b4d18"
	tests := []struct {
		name   string
		in     string
		want   uint64
		wantOK bool
	}{
		{"keys", Magic + "1 " + o + " 42 D 1:a", 0x9f3a61c07e2b4d18, true},
		{"clear", Magic + "1 0000000000000001 1 C", 1, true},
		{"header only, malformed after it", Magic + "1 " + o + " ", 0x9f3a61c07e2b4d18, true},
		{"raw key", "user:1", 0, false},
		{"empty", "", 0, false},
		{"magic alone", Magic, 0, false},
		{"other version", Magic + "2 " + o + " 1 C", 0, false},
		{"leading zero version", Magic + "01 " + o + " 1 C", 0, false},
		{"origin without space", Magic + "1 " + o, 0, false},
		{"origin too short", Magic + "1 9f3a61c07e2b4d1 1 C", 0, false},
		{"uppercase hex", Magic + "1 9F3A61C07E2B4D18 1 C", 0, false},
		{"origin too long", Magic + "1 " + o + "0 1 C", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := PeekOrigin([]byte(tt.in))
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("PeekOrigin(%q) = %x, %v; want %x, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// PeekOrigin agrees with Decode: when it reports an origin, Decode fails or
// returns that origin, and every version-1 envelope Decode accepts has one.
func FuzzPeekOrigin(f *testing.F) {
	for _, s := range seedCorpus() {
		f.Add(s)
	}
	f.Add([]byte(Magic + "1 0000000000000001 "))
	f.Add([]byte(Magic + "1 0000000000000001"))
	f.Fuzz(func(t *testing.T, p []byte) {
		origin, ok := PeekOrigin(p)
		m, err := Decode(p)
		switch {
		case ok && err == nil && (m.Raw || m.Origin != origin):
			t.Fatalf("PeekOrigin(%q) = %x, but Decode = %+v", p, origin, m)
		case ok && err != nil && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge):
			t.Fatalf("PeekOrigin(%q) = %x, but Decode failed with %v", p, origin, err)
		case !ok && err == nil && !m.Raw:
			t.Fatalf("PeekOrigin(%q) not ok, but Decode = %+v", p, m)
		}
	})
}

func BenchmarkPeekOrigin(b *testing.B) {
	dst, _, _ := AppendBatches(nil, nil, 42, 1, false, []string{"user:1", "user:2"}, 1024)
	p := dst[0]
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := PeekOrigin(p); !ok {
			b.Fatal("not an envelope")
		}
	}
}
