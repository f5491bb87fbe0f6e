package invacache_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
)

// While a node may not serve (its link unproven past MaxStaleness),
// concurrent GetOrLoad calls of one key still share one load: the database
// sees one query per key at a time, not one per caller.
func TestSingleFlightWhileNotServing(t *testing.T) {
	leakcheck.Check(t)
	const callers = 20
	n := newNodes(t, 1, func(ic *config.InvalidationConfig) { ic.MaxStaleness = 200 * time.Millisecond })[0]
	n.conn.Stall()
	eventually(t, 5*time.Second, "the node to stop serving", func() bool { return !n.Stats().Invalidation.Serving })
	var loads atomic.Int32
	release := make(chan struct{})
	loader := func(string) (string, time.Duration, error) {
		loads.Add(1)
		<-release
		return "db", 0, nil
	}
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if v, err := n.GetOrLoad("k", loader); err != nil || v != "db" {
				t.Errorf("GetOrLoad = %q, %v; want db, nil", v, err)
			}
		}()
	}
	eventually(t, 5*time.Second, "every caller waiting on the load", func() bool {
		return invacache.FlightWaiters(n.Cache, "k") == callers
	})
	close(release)
	wg.Wait()
	if got := loads.Load(); got != 1 {
		t.Errorf("%d concurrent GetOrLoad while not serving made %d loads, want 1", callers, got)
	}
	n.conn.Unstall()
}
