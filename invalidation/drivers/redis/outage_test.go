package redis_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/backend/option"
	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/faultproxy"
	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
	"github.com/halilbulentorhon/invacache-go/internal/redisserver"
)

// The bounds of the outage tests: a short MaxStaleness (pings every 150ms)
// and, where set, an OutageStaleness the tests can outlast.
const (
	strictBound = 600 * time.Millisecond
	outageBound = 4 * time.Second
)

func bounds(outage time.Duration) func(*config.InvalidationConfig) {
	return func(ic *config.InvalidationConfig) {
		ic.MaxStaleness, ic.OutageStaleness = strictBound, outage
		ic.RetryBackoffMax = 100 * time.Millisecond
	}
}

func inv(c invacache.Cache[string]) invacache.InvalidationStats { return c.Stats().Invalidation }

// A node that knows it lost Redis (killed: the connection resets, dials
// are refused) keeps serving until its last proof of life plus
// MaxStaleness, then stops, as for a loss it cannot see; without
// OutageStaleness no read is served past MaxStaleness. When Redis is back
// it catches up or clears before it serves again.
func TestKnownLossServesUntilTheStrictBound(t *testing.T) {
	leakcheck.Check(t)
	srv, _, cs := nodes(t, 1, bounds(0))
	c := cs[0]
	setAll(t, cs, "k", "v1")
	srv.Kill()
	// Before the fix the node stopped serving at the link-down.
	eventually(t, 10*time.Second, "a hit with the link known down", func() bool {
		return !inv(c).LinkUp && holds(c, "k", "v1")
	})
	eventually(t, 10*time.Second, "the node to stop serving", func() bool { return missing(c, "k") && !inv(c).Serving })
	if st := inv(c); st.OutageReads != 0 || !st.Outage {
		t.Errorf("OutageReads/Outage = %d/%v, want 0/true (refused dials: an outage, but no OutageStaleness)", st.OutageReads, st.Outage)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	setAll(t, cs, "k", "v3")
}

// With OutageStaleness, a node that cannot reach Redis at all serves its
// cache up to its last proof plus OutageStaleness, counts the reads served
// past MaxStaleness and caches no load meanwhile; a peer's write during the
// outage waits in its outbox, and once Redis is back the node catches up or
// clears, then drops the value the peer invalidated.
func TestOutageServesUnderOutageStaleness(t *testing.T) {
	leakcheck.Check(t)
	srv, _, cs := nodes(t, 2, bounds(outageBound))
	a, b := cs[0], cs[1]
	setAll(t, cs, "k", "v1")
	srv.Kill()
	eventually(t, 10*time.Second, "b past MaxStaleness in an outage, serving k", func() bool {
		st := inv(b)
		return st.Outage && st.SinceAlive > strictBound && holds(b, "k", "v1")
	})
	if got := inv(b).OutageReads; got == 0 {
		t.Errorf("OutageReads = 0 after a read past MaxStaleness, want > 0")
	}
	var loads atomic.Int32
	load := func(string) (string, time.Duration, error) { loads.Add(1); return "db", 0, nil }
	for range 2 {
		if v, err := b.GetOrLoad("m", load); err != nil || v != "db" {
			t.Fatalf("GetOrLoad during the outage = %q, %v", v, err)
		}
	}
	if got := loads.Load(); got != 2 {
		t.Errorf("2 GetOrLoad past MaxStaleness made %d loads, want 2 (a load is not cached while keys may be stale)", got)
	}
	if err := a.Set("k", "v2", option.WithInvalidation()); err != nil {
		t.Fatal(err)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Flush(ctx); err != nil {
		t.Fatalf("Flush after Redis returned: %v", err)
	}
	eventually(t, 10*time.Second, "b serving normally without v1", func() bool {
		st := inv(b)
		return st.LinkUp && st.Serving && !st.Outage && missing(b, "k")
	})
	setAll(t, cs, "k", "v3")
}

// An outage longer than OutageStaleness: the node stops serving at its last
// proof plus OutageStaleness, and serves again after Redis returns.
func TestOutageLongerThanOutageStaleness(t *testing.T) {
	leakcheck.Check(t)
	const outage = 1500 * time.Millisecond
	srv, _, cs := nodes(t, 1, bounds(outage))
	c := cs[0]
	setAll(t, cs, "k", "v1")
	srv.Kill()
	eventually(t, 10*time.Second, "a read past MaxStaleness", func() bool {
		return inv(c).SinceAlive > strictBound && holds(c, "k", "v1")
	})
	eventually(t, 10*time.Second, "the node to stop at OutageStaleness", func() bool { return missing(c, "k") && !inv(c).Serving })
	if st := inv(c); st.SinceAlive < outage {
		t.Errorf("stopped serving %s after the last proof, before OutageStaleness %s", st.SinceAlive, outage)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	setAll(t, cs, "k", "v2")
}

// Redis reachable but the subscription silent: a blackholed link (the proxy
// accepts new connections and drops their bytes) and a stuck server
// (SIGSTOP: the kernel completes every dial, nothing answers). Neither is
// an outage: the strict bound holds even with OutageStaleness set.
func TestUnprovenLinkKeepsTheStrictBound(t *testing.T) {
	tests := []struct {
		name         string
		fault, heal  func(t *testing.T, srv *redisserver.Server, px *faultproxy.Proxy)
		throughProxy bool
	}{
		{"blackhole (unknown loss)",
			func(_ *testing.T, _ *redisserver.Server, px *faultproxy.Proxy) { px.Blackhole() },
			func(_ *testing.T, _ *redisserver.Server, px *faultproxy.Proxy) { px.Heal() }, true},
		{"stuck server (half-open link)",
			func(t *testing.T, srv *redisserver.Server, _ *faultproxy.Proxy) {
				if err := srv.Pause(); err != nil {
					t.Fatal(err)
				}
			},
			func(t *testing.T, srv *redisserver.Server, _ *faultproxy.Proxy) {
				if err := srv.Resume(); err != nil {
					t.Fatal(err)
				}
			}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakcheck.Check(t)
			srv := redisserver.StartT(t, redisserver.Options{})
			px := faultproxy.NewT(t, srv.Addr())
			addr := srv.Addr()
			if tt.throughProxy {
				addr = px.Addr()
			}
			c := node(t, map[string]any{"Address": addr, "Channel": "outage:" + t.Name(), "DialTimeout": "1s"}, bounds(outageBound))
			setAll(t, []invacache.Cache[string]{c}, "k", "v1")
			tt.fault(t, srv, px)
			eventually(t, 10*time.Second, "the node to stop serving", func() bool { return missing(c, "k") })
			// Through the dead-link timeout and at least one redial.
			for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
				if holds(c, "k", "v1") {
					t.Fatalf("served k past MaxStaleness while Redis was reachable (stats %+v)", inv(c))
				}
			}
			if st := inv(c); st.SinceAlive < strictBound || st.OutageReads != 0 || st.Outage {
				t.Errorf("SinceAlive/OutageReads/Outage = %s/%d/%v, want >= %s/0/false", st.SinceAlive, st.OutageReads, st.Outage, strictBound)
			}
			tt.heal(t, srv, px)
			setAll(t, []invacache.Cache[string]{c}, "k", "v2")
		})
	}
}

// A proxy in front of a Redis that is down accepts each connection and
// resets it before any reply: that is Redis unreachable too, so the node
// serves under OutageStaleness, and the strict bound is back when the proxy
// forwards again.
func TestResetBeforeReplyIsAnOutage(t *testing.T) {
	leakcheck.Check(t)
	srv := redisserver.StartT(t, redisserver.Options{})
	px := faultproxy.NewT(t, srv.Addr())
	c := node(t, map[string]any{"Address": px.Addr(), "Channel": "outage:" + t.Name(), "DialTimeout": "1s"}, bounds(outageBound))
	setAll(t, []invacache.Cache[string]{c}, "k", "v1")
	px.Refuse()
	px.Cut()
	eventually(t, 10*time.Second, "a read past MaxStaleness in an outage", func() bool {
		st := inv(c)
		return st.Outage && st.SinceAlive > strictBound && holds(c, "k", "v1")
	})
	px.Accept()
	eventually(t, 10*time.Second, "the link up again, the outage over", func() bool {
		st := inv(c)
		return st.LinkUp && !st.Outage && st.Serving && st.SinceAlive < strictBound
	})
}
