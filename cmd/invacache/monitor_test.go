package main

import (
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"

	"github.com/halilbulentorhon/invacache-go/internal/wire"
	"github.com/halilbulentorhon/invacache-go/invalidation"
)

// FuzzMonitorPayload: any payload is printed as one line (two with a gap)
// and counted once, without panicking.
func FuzzMonitorPayload(f *testing.F) {
	leakcheck.Check(f)
	env, _, _ := wire.AppendBatches(nil, nil, 7, 1, false, []string{"a", "b"}, 1<<16)
	f.Add(env[0])
	f.Add([]byte{})
	f.Add([]byte("user:1"))
	f.Add([]byte(wire.Magic))
	f.Add([]byte(wire.Magic + "1 x"))
	f.Add(wire.AppendFrame(nil, invalidation.LogPos{Epoch: "e", ID: invalidation.LogID{Ms: 1, Seq: 2}}, env[0]))
	f.Add([]byte(wire.FrameMagic + "e 1-"))
	f.Fuzz(func(t *testing.T, p []byte) {
		for _, asJSON := range []bool{false, true} {
			st := &monitorStats{origins: map[uint64]uint64{5: 3}}
			var b strings.Builder
			monitorPayload(&monitorPrinter{w: &b, json: asJSON, maxKeys: 3}, st, p, false)
			if got := st.envelopes + st.raw + st.malformed; got != 1 {
				t.Fatalf("payload %q counted %d times, want once", p, got)
			}
			if n := strings.Count(b.String(), "\n"); n < 1 || n > 2 {
				t.Fatalf("payload %q printed %d lines:\n%s", p, n, b.String())
			}
			if !asJSON {
				continue
			}
			for _, line := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
				var ev monitorEvent
				if err := json.Unmarshal([]byte(line), &ev); err != nil || ev.Event == "" || ev.Time == "" {
					t.Fatalf("payload %q: line %q is not a monitor event (%v)", p, line, err)
				}
			}
		}
	})
}

func TestQuoteKey(t *testing.T) {
	leakcheck.Check(t)
	tests := []struct{ in, want string }{
		{"user:1", "user:1"},
		{"a b", `"a b"`},
		{"", `""`},
		{"x\x00", `"x\x00"`},
	}
	for _, tc := range tests {
		if got := quoteKey(tc.in); got != tc.want {
			t.Errorf("quoteKey(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
	monitorPayload(&monitorPrinter{w: io.Discard, maxKeys: 1}, &monitorStats{origins: map[uint64]uint64{}}, nil, true)
}
