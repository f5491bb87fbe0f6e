package invacache_test

import (
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
)

// Stats tells a local cache from a distributed one, and which misses were
// refused because the node could not serve (what a metrics exporter needs).
func TestStatsDistributedAndNotServingMisses(t *testing.T) {
	leakcheck.Check(t)
	local, err := invacache.NewCache[string](config.InvaCacheConfig{})
	if err != nil {
		t.Fatalf("NewCache: %v", err)
	}
	defer local.Close()
	local.Get("absent")
	if st := local.Stats(); st.Distributed || st.Misses != 1 || st.NotServingMisses != 0 {
		t.Errorf("local cache: Distributed=%v Misses=%d NotServingMisses=%d, want false 1 0", st.Distributed, st.Misses, st.NotServingMisses)
	}

	const bound = 200 * time.Millisecond
	n := newNodes(t, 1, func(ic *config.InvalidationConfig) { ic.MaxStaleness = bound })[0]
	n.Get("absent")
	if st := n.Stats(); !st.Distributed || st.Misses != 1 || st.NotServingMisses != 0 {
		t.Errorf("serving node: Distributed=%v Misses=%d NotServingMisses=%d, want true 1 0", st.Distributed, st.Misses, st.NotServingMisses)
	}
	n.conn.Stall()
	eventually(t, bound+2*time.Second, "a stalled link should stop serving", func() bool { return !n.Stats().Invalidation.Serving })
	before := n.Stats()
	n.Get("absent")
	n.Get("absent")
	st := n.Stats()
	if got, want := st.Misses-before.Misses, uint64(2); got != want {
		t.Errorf("misses while not serving = %d, want %d", got, want)
	}
	if got, want := st.NotServingMisses-before.NotServingMisses, uint64(2); got != want {
		t.Errorf("NotServingMisses while not serving = %d, want %d", got, want)
	}
	n.conn.Unstall()
}
