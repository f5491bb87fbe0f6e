package redis_test

import (
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go/backend/option"
	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
	"github.com/halilbulentorhon/invacache-go/internal/redisserver"
)

// End to end (issue 18 case 2): a writer with DisableReplay invalidates a
// key while a node is away; the node comes back, and must not serve the
// value (the log cannot hold that message: it clears).
func TestCacheUnloggedWriterWhileAway(t *testing.T) {
	leakcheck.Check(t)
	srv, px, a, b := pairViaProxy(t, redisserver.Options{}, nil,
		func(ic *config.InvalidationConfig) { ic.MaxStaleness = 500 * time.Millisecond })
	w := node(t, map[string]any{"Address": srv.Addr(), "Channel": "replay:" + t.Name(), "DisableReplay": true})
	px.Refuse()
	px.Cut()
	// A node that lost its link serves until its last proof plus
	// MaxStaleness; "serving again" below must mean after its recovery.
	eventually(t, 5*time.Second, "link down, not serving", func() bool {
		st := b.Stats().Invalidation
		return !st.LinkUp && !st.Serving
	})
	if err := w.Delete("gone", option.WithDeleteInvalidation()); err != nil {
		t.Fatal(err)
	}
	flush(t, w)
	if err := a.Delete("other", option.WithDeleteInvalidation()); err != nil { // the log moves on
		t.Fatal(err)
	}
	flush(t, a)
	px.Accept()
	eventually(t, 15*time.Second, "serving again", func() bool { return b.Stats().Invalidation.Serving })
	if !missing(b, "gone") {
		t.Fatalf("b serves %q, invalidated by an unlogged writer while b was away; stats %+v", "gone", b.Stats().Invalidation)
	}
	t.Logf("clears by reason %v", b.Stats().Invalidation.ClearsByReason)
}
