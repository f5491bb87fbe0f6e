package engine_test

import (
	"strings"
	"testing"

	"github.com/halilbulentorhon/invacache-go/internal/engine"
	"github.com/halilbulentorhon/invacache-go/invalidation/drivers/memory"
)

// While publishing is stuck (the bus is down), keys waiting past
// OutboxMaxKeys or OutboxMaxBytes collapse into one clear: the outbox stays
// within its bound, the overflow is counted, and when the bus returns the
// peer gets one clear instead of every key. Duplicates do not count.
func TestOutboxCapCollapsesToClear(t *testing.T) {
	tests := []struct {
		name     string
		maxKeys  int
		maxBytes int
		keys     []string
		overflow bool
	}{
		{"distinct keys past the count", 100, 1 << 20, keysN("k", 1000), true},
		{"long keys past the bytes", 100_000, 4096, []string{strings.Repeat("a", 3000), strings.Repeat("b", 3000)}, true},
		{"duplicates within the count", 100, 1 << 20, repeat(keysN("k", 50), 40), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bus := memory.NewBus()
			t.Cleanup(func() { _ = bus.Close() })
			conn := bus.Connect()
			t.Cleanup(func() { _ = conn.Close() })
			g := newGate(conn)
			a := newNode(t, bus, engine.Config{Driver: g, OutboxMaxKeys: tt.maxKeys, OutboxMaxBytes: tt.maxBytes})
			b := newNode(t, bus, engine.Config{})
			clears := b.t.clearCount()

			g.hold()
			if err := a.e.BroadcastDelete("first"); err != nil {
				t.Fatal(err)
			}
			<-g.entered // "first" is in flight and stuck; the rest waits
			for _, k := range tt.keys {
				if err := a.e.BroadcastDelete(k); err != nil {
					t.Fatal(err)
				}
				if d := a.e.Stats().OutboxDepth; d > tt.maxKeys+2 {
					t.Fatalf("outbox depth %d past OutboxMaxKeys %d", d, tt.maxKeys)
				}
			}
			st := a.e.Stats()
			if got := st.OutboxOverflows > 0; got != tt.overflow {
				t.Errorf("OutboxOverflows = %d, want overflow %v", st.OutboxOverflows, tt.overflow)
			}
			g.open()
			flush(t, a.e)
			if tt.overflow {
				waitFor(t, "peer cleared", func() bool { return b.t.clearCount() > clears })
				if n := len(b.t.received()); n > 1 {
					t.Errorf("peer got %d keys besides the clear, want only the one in flight", n)
				}
				return
			}
			waitFor(t, "peer got the keys", func() bool { return b.t.count(tt.keys[len(tt.keys)-1]) > 0 })
			if got := b.t.clearCount(); got != clears {
				t.Errorf("peer cleared %d times, want no clear", got-clears)
			}
		})
	}
}

func repeat(keys []string, n int) []string {
	var out []string
	for range n {
		out = append(out, keys...)
	}
	return out
}
