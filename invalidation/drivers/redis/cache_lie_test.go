package redis_test

import (
	"strings"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/backend/option"
	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/faultproxy"
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
	goneAndLapsed(t, px, b)
	if err := w.Delete("gone", option.WithDeleteInvalidation()); err != nil {
		t.Fatal(err)
	}
	flush(t, w)
	if err := a.Delete("other", option.WithDeleteInvalidation()); err != nil { // the log moves on
		t.Fatal(err)
	}
	flush(t, a)
	handled := gapsHandled(b)
	px.Accept()
	// A node that lost its link serves until its bound lapses, so wait for
	// the gap to be handled, not merely for serving.
	eventually(t, 15*time.Second, "serving after the gap", func() bool { return servingAfterGap(b, handled) })
	if !missing(b, "gone") {
		t.Fatalf("b serves %q, invalidated by an unlogged writer while b was away; stats %+v", "gone", b.Stats().Invalidation)
	}
	t.Logf("clears by reason %v", b.Stats().Invalidation.ClearsByReason)
}

// End to end (issue 18 case 4): a node is away while a peer invalidates a
// key; Redis, last saved before that write, is killed and restarts from
// its RDB snapshot (the epoch key comes back, the write does not). The
// node must not catch up from that log and serve the value.
func TestCacheRestartFromSnapshotWhileAway(t *testing.T) {
	leakcheck.Check(t)
	srv, px, a, b := pairViaProxy(t, redisserver.Options{}, nil)
	if _, err := srv.Do("SAVE"); err != nil {
		t.Fatal(err)
	}
	px.Refuse()
	px.Cut()
	eventually(t, 5*time.Second, "link down", func() bool { return !b.Stats().Invalidation.LinkUp })
	if err := a.Delete("gone", option.WithDeleteInvalidation()); err != nil {
		t.Fatal(err)
	}
	flush(t, a)
	srv.Kill()
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	handled := gapsHandled(b)
	px.Accept()
	eventually(t, 15*time.Second, "serving after the gap", func() bool { return servingAfterGap(b, handled) })
	if !missing(b, "gone") {
		t.Fatalf("b serves %q, invalidated before the restart lost it from the log; stats %+v", "gone", b.Stats().Invalidation)
	}
	t.Logf("clears by reason %v", b.Stats().Invalidation.ClearsByReason)
}

// End to end (issue 18 case 5): Redis at maxmemory (noeviction) refuses
// the log write; the invalidation must still reach the linked peer.
func TestCacheInvalidatesAtMaxmemory(t *testing.T) {
	leakcheck.Check(t)
	srv, _, a, b := pairViaProxy(t, redisserver.Options{}, nil)
	for _, args := range [][]string{
		{"SET", "ballast", strings.Repeat("x", 1<<20)},
		{"CONFIG", "SET", "maxmemory-policy", "noeviction"},
		{"CONFIG", "SET", "maxmemory", "1"},
	} {
		if _, err := srv.Do(args...); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Delete("gone", option.WithDeleteInvalidation()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the peer drops the key invalidated at maxmemory", func() bool { return missing(b, "gone") })
	if _, err := srv.Do("CONFIG", "SET", "maxmemory", "0"); err != nil {
		t.Fatal(err)
	}
}

// gapsHandled counts the gaps c resolved: caught up, cleared or collapsed.
func gapsHandled(c interface{ Stats() invacache.Stats }) uint64 {
	st := c.Stats().Invalidation
	return st.CatchUps + st.ClearsOnGap + st.ClearsCollapsed
}

// servingAfterGap reports whether c is linked, serving, and resolved a gap
// since gapsHandled returned before.
func servingAfterGap(c interface{ Stats() invacache.Stats }, before uint64) bool {
	st := c.Stats().Invalidation
	return st.LinkUp && st.Serving && gapsHandled(c) > before
}

// goneAndLapsed cuts b off through px (new connections refused) and waits
// until b has no link and no longer serves: a node that lost its link
// serves until its last proof of life plus MaxStaleness, and what a test
// checks afterwards must come from its recovery, not from before the cut.
func goneAndLapsed(t *testing.T, px *faultproxy.Proxy, b invacache.Cache[string]) {
	t.Helper()
	px.Refuse()
	px.Cut()
	eventually(t, 5*time.Second, "link down, not serving", func() bool {
		st := b.Stats().Invalidation
		return !st.LinkUp && !st.Serving
	})
}
