package wire

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
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
		{"key with digits and spaces", Magic + "1 " + o + " 1 C D 4: 1:x", Message{Version: 1, Origin: 255, Seq: 1, Ops: []Op{{Clear: true}, {Keys: []string{" 1:x"}}}}, nil},
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

// TestMaxKeyBytesFits: a key of MaxKeyBytes goes out alone in an envelope
// that decodes, whatever the origin and sequence number (the senders refuse
// longer keys at the call).
func TestMaxKeyBytesFits(t *testing.T) {
	key := strings.Repeat("k", MaxKeyBytes)
	payloads, _, _ := AppendBatches(nil, nil, ^uint64(0), ^uint64(0), false, []string{key}, 1024)
	if len(payloads) != 1 {
		t.Fatalf("%d payloads, want 1", len(payloads))
	}
	m, err := Decode(payloads[0])
	if err != nil {
		t.Fatalf("key of %d bytes (payload %d bytes): Decode error = %v", len(key), len(payloads[0]), err)
	}
	if len(m.Ops) != 1 || len(m.Ops[0].Keys) != 1 || m.Ops[0].Keys[0] != key {
		t.Errorf("key of %d bytes did not round-trip", len(key))
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
		// Collapsed: at most a clear, then one delete of distinct keys.
		if len(m.Ops) > 2 || (len(m.Ops) == 2 && (!m.Ops[0].Clear || m.Ops[1].Clear)) {
			t.Fatalf("Decode(%q) ops %+v are not collapsed", p, m.Ops)
		}
		if n := len(m.Ops); n > 0 && !m.Ops[n-1].Clear {
			seen := map[string]bool{}
			for _, k := range m.Ops[n-1].Keys {
				if seen[k] {
					t.Fatalf("Decode(%q) repeats key %q", p, k)
				}
				seen[k] = true
			}
		}
		// The collapsed message is a fixed point of encoding.
		re := AppendMessage(nil, m)
		m2, err := Decode(re)
		if err != nil || !Equal(m, m2) {
			t.Fatalf("re-encoding of %q = %q decodes to %+v, %v; want %+v", p, re, m2, err, m)
		}
		if re2 := AppendMessage(nil, m2); !bytes.Equal(re, re2) {
			t.Fatalf("encoding is not canonical: %q re-encodes to %q", re, re2)
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
		// Each payload names its keys once; together they name them all.
		if !clear && !sameSet(got, keys) {
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

// A clear subsumes every operation before it and repeated keys name one
// key: Decode returns at most a clear followed by one delete of the
// distinct keys after the last clear, in first-seen order (issue 10 item 5:
// each " C" became an Op and a full clear).
func TestDecodeCollapsesOps(t *testing.T) {
	const h = Magic + "1 00000000000000ff 1"
	m := func(ops ...Op) Message { return Message{Version: 1, Origin: 255, Seq: 1, Ops: ops} }
	tests := []struct {
		name string
		in   string
		want Message
	}{
		{"clears collapse", h + strings.Repeat(" C", 500), m(Op{Clear: true})},
		{"keys before a clear are subsumed", h + " D 1:a C D 1:b", m(Op{Clear: true}, Op{Keys: []string{"b"}})},
		{"delete ops merge", h + " D 1:a D 1:b 1:a", m(Op{Keys: []string{"a", "b"}})},
		{"repeated keys name one", h + " D" + strings.Repeat(" 3:k:1", 1000) + " 3:k:2", m(Op{Keys: []string{"k:1", "k:2"}})},
		{"empty delete ops vanish", h + " D D", m()},
		{"empty delete op before keys", h + " D D 1:k", m(Op{Keys: []string{"k"}})},
		{"clear then repeats", h + " D 1:x C D 1:a C D 1:b 1:b 1:c", m(Op{Clear: true}, Op{Keys: []string{"b", "c"}})},
		{"many distinct keys", h + " D" + func() string {
			var b strings.Builder
			for i := range 100 {
				fmt.Fprintf(&b, " 3:%03d", i%40)
			}
			return b.String()
		}(), m(Op{Keys: func() []string {
			var ks []string
			for i := range 40 {
				ks = append(ks, fmt.Sprintf("%03d", i))
			}
			return ks
		}()})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode([]byte(tt.in))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !Equal(got, tt.want) {
				t.Errorf("Decode(%.60q...) = %.300v, want %+v", tt.in, fmt.Sprintf("%+v", got), tt.want)
			}
		})
	}
}

// Past MaxOps operations or MaxPayloadBytes bytes an envelope is refused.
func TestDecodeCaps(t *testing.T) {
	const h = Magic + "1 00000000000000ff 1"
	if _, err := Decode([]byte(h + strings.Repeat(" C", MaxOps))); err != nil {
		t.Errorf("Decode of MaxOps clears: %v, want nil", err)
	}
	if _, err := Decode([]byte(h + strings.Repeat(" C", MaxOps+1))); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Decode of MaxOps+1 clears: err = %v, want ErrTooLarge", err)
	}
}

// capPayload returns an envelope of at most MaxPayloadBytes: ops, then
// keys cycling through distinct names, as many as fit.
func capPayload(ops string, distinct int) []byte {
	p := []byte(Magic + "1 00000000000000ff 1" + ops + " D")
	for i := 0; ; i++ {
		k := fmt.Sprintf("key:%d", i%distinct)
		if len(p)+keyLen(k) > MaxPayloadBytes {
			return p
		}
		p = appendKey(p, k)
	}
}

// allocBytesPerCall measures the bytes f allocates, averaged over runs.
func allocBytesPerCall(f func()) uint64 {
	const runs = 4
	var a, b runtime.MemStats
	f() // warm up
	runtime.GC()
	runtime.ReadMemStats(&a)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&b)
	return (b.TotalAlloc - a.TotalAlloc) / runs
}

// A payload at the size cap allocates in proportion to the distinct keys
// it names, not to its size (issue 10 item 5: an 8 MiB payload allocated
// 788 MiB).
func TestDecodeAllocationFollowsDistinctKeys(t *testing.T) {
	clearsAndKeys := strings.Repeat(" D 5:key:0 5:key:0 C", MaxOps/2-1)
	tests := []struct {
		name     string
		p        []byte
		distinct int
	}{
		{"one key repeated", capPayload("", 1), 1},
		{"ten keys repeated", capPayload("", 10), 10},
		{"a thousand keys repeated", capPayload("", 1000), 1000},
		{"clears between repeats", capPayload(clearsAndKeys, 1), 1},
		{"all distinct", capPayload("", MaxPayloadBytes), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Decode(tt.p)
			if err != nil {
				t.Fatalf("Decode(%d bytes): %v", len(tt.p), err)
			}
			keys := m.Ops[len(m.Ops)-1].Keys
			distinct := map[string]bool{}
			for _, k := range keys {
				distinct[k] = true
			}
			var keyBytes int
			for k := range distinct {
				keyBytes += len(k)
			}
			// A fixed allowance plus a per-key cost well above a string
			// header, its bytes and an index entry.
			limit := uint64(16<<10 + 4*keyBytes + 128*len(distinct))
			got := allocBytesPerCall(func() { _, _ = Decode(tt.p) })
			if got > limit {
				t.Errorf("Decode of %d bytes naming %d distinct keys (%d key bytes) allocated %d bytes, want <= %d", len(tt.p), len(distinct), keyBytes, got, limit)
			}
			if tt.distinct > 0 && len(keys) != tt.distinct {
				t.Errorf("Decode returned %d keys, want the %d distinct ones", len(keys), tt.distinct)
			}
		})
	}
}

// BenchmarkDecodeAtCap decodes payloads of MaxPayloadBytes: the cost of the
// worst message a peer (or anyone who can publish) can send.
func BenchmarkDecodeAtCap(b *testing.B) {
	for _, bc := range []struct {
		name string
		p    []byte
	}{
		{"one-key-repeated", capPayload("", 1)},
		{"1000-keys-repeated", capPayload("", 1000)},
		{"all-distinct", capPayload("", MaxPayloadBytes)},
		{"clears", []byte(Magic + "1 00000000000000ff 1" + strings.Repeat(" C", MaxOps))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.p)))
			b.ReportAllocs()
			for b.Loop() {
				_, _ = Decode(bc.p)
			}
		})
	}
}

func sameSet(a, b []string) bool {
	in := func(xs []string) map[string]bool {
		m := map[string]bool{}
		for _, x := range xs {
			m[x] = true
		}
		return m
	}
	ma, mb := in(a), in(b)
	if len(ma) != len(mb) {
		return false
	}
	for k := range ma {
		if !mb[k] {
			return false
		}
	}
	return true
}
