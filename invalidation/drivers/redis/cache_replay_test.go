package redis_test

import (
	"context"
	"fmt"
	"github.com/halilbulentorhon/invacache-go/internal/poll"
	"github.com/halilbulentorhon/invacache-go/invalidation/drivers/redis"
	"maps"
	"os"
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

// gapClears is the number of whole-cache clears caused by gaps (every
// reason but a peer's Clear).
func gapClears(c invacache.Cache[string]) map[string]uint64 {
	m := maps.Clone(c.Stats().Invalidation.ClearsByReason)
	delete(m, invacache.ClearReasonPeer)
	return m
}

// pairViaProxy starts a server, a writer a on it and a peer b reaching it
// through a fault proxy, on one channel; both cache "keep" and "gone".
func pairViaProxy(t *testing.T, srvOpts redisserver.Options, driver map[string]any, tune ...func(*config.InvalidationConfig)) (srv *redisserver.Server, px *faultproxy.Proxy, a, b invacache.Cache[string]) {
	t.Helper()
	srv = redisserver.StartT(t, srvOpts)
	px = faultproxy.NewT(t, srv.Addr())
	ch := "replay:" + t.Name()
	dc := func(addr string) map[string]any {
		m := map[string]any{"Address": addr, "Channel": ch, "DialTimeout": "1s"}
		maps.Copy(m, driver)
		return m
	}
	tune = append([]func(*config.InvalidationConfig){func(ic *config.InvalidationConfig) { ic.RetryBackoffMax = 100 * time.Millisecond }}, tune...)
	a = node(t, dc(srv.Addr()), tune...)
	b = node(t, dc(px.Addr()), tune...)
	setAll(t, []invacache.Cache[string]{a, b}, "keep", "v")
	setAll(t, []invacache.Cache[string]{a, b}, "gone", "v")
	return srv, px, a, b
}

// checkCaughtUp waits for b to serve again after a catch-up and checks that
// it applied what it missed without clearing.
func checkCaughtUp(t *testing.T, b invacache.Cache[string], catchUps uint64, clears map[string]uint64) {
	t.Helper()
	if !poll.Within(15*time.Second, func() bool { return b.Stats().Invalidation.CatchUps > catchUps }) {
		t.Fatalf("no catch-up within 15s; stats %+v", b.Stats().Invalidation)
	}
	// The invalidation arrives by the replay, or live right after it when
	// it was published after the replay read the log's head (a flood, which
	// may also get the slow node dropped again: it catches up again).
	eventually(t, 15*time.Second, "serving, without the key invalidated while away, with the untouched key", func() bool {
		return b.Stats().Invalidation.Serving && missing(b, "gone") && holds(b, "keep", "v")
	})
	if got := gapClears(b); !maps.Equal(got, clears) {
		t.Errorf("clears by reason %v, want %v (no clear on a catch-up)", got, clears)
	}
	st := b.Stats().Invalidation
	if st.KeysReplayed == 0 {
		t.Errorf("KeysReplayed = 0 after a catch-up; stats %+v", st)
	}
	t.Logf("caught up: CatchUps=%d KeysReplayed=%d ClearsByReason=%v", st.CatchUps, st.KeysReplayed, st.ClearsByReason)
}

// A short disconnect while a peer writes: the node replays the log from
// its cursor instead of clearing.
func TestCacheCatchUpAfterDisconnect(t *testing.T) {
	leakcheck.Check(t)
	_, px, a, b := pairViaProxy(t, redisserver.Options{}, nil)
	catchUps, clears := b.Stats().Invalidation.CatchUps, gapClears(b)

	px.Refuse()
	px.Cut()
	eventually(t, 5*time.Second, "link down", func() bool { return !b.Stats().Invalidation.LinkUp })
	if err := a.Delete("gone", option.WithDeleteInvalidation()); err != nil {
		t.Fatal(err)
	}
	flush(t, a)
	px.Accept()
	checkCaughtUp(t, b, catchUps, clears)
}

// A partition longer than MaxStaleness: the node stops serving, and after
// the heal catches up instead of clearing.
func TestCacheCatchUpAfterPartition(t *testing.T) {
	leakcheck.Check(t)
	const maxStaleness = 500 * time.Millisecond
	_, px, a, b := pairViaProxy(t, redisserver.Options{}, nil, func(ic *config.InvalidationConfig) { ic.MaxStaleness = maxStaleness })
	catchUps, clears := b.Stats().Invalidation.CatchUps, gapClears(b)

	px.Blackhole()
	eventually(t, maxStaleness+5*time.Second, "the partitioned node stops serving", func() bool { return missing(b, "keep") })
	if err := a.Delete("gone", option.WithDeleteInvalidation()); err != nil {
		t.Fatal(err)
	}
	flush(t, a)
	px.Heal()
	checkCaughtUp(t, b, catchUps, clears)
}

// A subscriber too slow for its output buffer is dropped by Redis; it
// catches up from the log, flood included. The flood comes from a
// Publisher, which does not subscribe: b's is the only subscription that
// Redis can drop (a writing cache's own subscription, as loaded as b's on
// a busy machine, was once dropped instead, and b then had nothing to
// catch up from).
func TestCacheCatchUpAfterSlowSubscriberDropped(t *testing.T) {
	leakcheck.Check(t)
	srv := redisserver.StartT(t, redisserver.Options{Args: []string{"--client-output-buffer-limit", "pubsub 64kb 32kb 1"}})
	px := faultproxy.NewT(t, srv.Addr())
	ch := "replay:" + t.Name()
	b := node(t, map[string]any{"Address": px.Addr(), "Channel": ch, "DialTimeout": "1s"},
		func(ic *config.InvalidationConfig) { ic.RetryBackoffMax = 100 * time.Millisecond })
	pub, err := redis.NewPublisher(redis.Config{Address: srv.Addr(), Channel: ch})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	setAll(t, []invacache.Cache[string]{b}, "keep", "v")
	setAll(t, []invacache.Cache[string]{b}, "gone", "v")
	catchUps, clears := b.Stats().Invalidation.CatchUps, gapClears(b)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	px.SetLatency(0, 20*time.Millisecond) // b reads slowly
	// 10 MB, more than the kernel's socket buffers hold on the way.
	keys := make([]string, 0, 50)
	for i := range 10000 {
		keys = append(keys, fmt.Sprintf("flood:%06d:%s", i, strings.Repeat("x", 1000)))
		if len(keys) == cap(keys) {
			if err := pub.Invalidate(ctx, keys...); err != nil {
				t.Fatal(err)
			}
			keys = keys[:0]
		}
	}
	if err := pub.Invalidate(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	// Redis 7.0's INFO has no count of these disconnections: its log
	// tells.
	eventually(t, 20*time.Second, "Redis dropped the slow subscriber", func() bool {
		lg, err := os.ReadFile(srv.LogPath())
		return err == nil && strings.Contains(string(lg), "for overcoming of output buffer limits")
	})
	px.SetLatency(0, 0)
	checkCaughtUp(t, b, catchUps, clears)
}

// A Redis restarted without persistence lost the log: the node must clear.
func TestCacheClearsAfterRestartWithoutPersistence(t *testing.T) {
	leakcheck.Check(t)
	srv, _, a, b := pairViaProxy(t, redisserver.Options{}, nil)
	setAll(t, []invacache.Cache[string]{b}, "stale", "v")
	before := b.Stats().Invalidation.ClearsByReason[invacache.ClearReasonNoContinuity]
	srv.Kill()
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "clear for lack of continuity", func() bool {
		return b.Stats().Invalidation.ClearsByReason[invacache.ClearReasonNoContinuity] > before
	})
	if !missing(b, "stale") {
		t.Error("a value cached before the log was lost survived")
	}
	checkPair(t, a, b)
}

// A node away longer than ReplayWindow finds the log trimmed past its
// cursor: it must clear, and never serve the value invalidated meanwhile.
func TestCacheClearsWhenLogTrimmedPastCursor(t *testing.T) {
	leakcheck.Check(t)
	// One entry per stream node, so that trimming is exact.
	_, px, a, b := pairViaProxy(t, redisserver.Options{Args: []string{"--stream-node-max-entries", "1"}}, map[string]any{"ReplayWindow": "1s"},
		func(ic *config.InvalidationConfig) { ic.MaxStaleness = 500 * time.Millisecond })
	before := b.Stats().Invalidation.ClearsByReason[invacache.ClearReasonNoContinuity]

	goneAndLapsed(t, px, b)
	if err := a.Delete("gone", option.WithDeleteInvalidation()); err != nil {
		t.Fatal(err)
	}
	flush(t, a)
	time.Sleep(1100 * time.Millisecond) // past the window, on Redis's clock
	if err := a.Delete("other", option.WithDeleteInvalidation()); err != nil {
		t.Fatal(err) // trims what came before the window
	}
	flush(t, a)
	px.Accept()
	deadline := time.Now().Add(15 * time.Second)
	for b.Stats().Invalidation.ClearsByReason[invacache.ClearReasonNoContinuity] == before {
		if holds(b, "gone", "v") && b.Stats().Invalidation.Serving {
			t.Fatal("served a value invalidated while the node was away")
		}
		if time.Now().After(deadline) {
			t.Fatalf("no clear for lack of continuity; stats %+v", b.Stats().Invalidation)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if !missing(b, "gone") || !missing(b, "keep") {
		t.Error("the node did not clear")
	}
}

// DisableReplay: a gap clears, as without a log.
func TestCacheDisableReplayClears(t *testing.T) {
	leakcheck.Check(t)
	_, px, a, b := pairViaProxy(t, redisserver.Options{}, map[string]any{"DisableReplay": true})
	before := b.Stats().Invalidation.ClearsByReason[invacache.ClearReasonReplayDisabled]
	px.Cut()
	eventually(t, 10*time.Second, "clear on the gap", func() bool {
		return b.Stats().Invalidation.ClearsByReason[invacache.ClearReasonReplayDisabled] > before
	})
	if !missing(b, "keep") {
		t.Error("keep survived a gap with DisableReplay")
	}
	checkPair(t, a, b)
}

// A GetOrLoad loading while the node was cut off must not cache its value
// when a replayed entry invalidated the key.
func TestCacheLoadAcrossCatchUpNotCached(t *testing.T) {
	leakcheck.Check(t)
	_, px, a, b := pairViaProxy(t, redisserver.Options{}, nil)
	catchUps := b.Stats().Invalidation.CatchUps
	inLoader, release := make(chan struct{}), make(chan struct{})
	done := make(chan string)
	go func() {
		v, _ := b.GetOrLoad("loaded", func(string) (string, time.Duration, error) {
			close(inLoader)
			<-release
			return "old", 0, nil
		})
		done <- v
	}()
	<-inLoader
	px.Refuse()
	px.Cut()
	eventually(t, 5*time.Second, "link down", func() bool { return !b.Stats().Invalidation.LinkUp })
	if err := a.Set("loaded", "new", option.WithInvalidation()); err != nil {
		t.Fatal(err)
	}
	flush(t, a)
	px.Accept()
	eventually(t, 15*time.Second, "catch-up", func() bool {
		st := b.Stats().Invalidation
		return st.CatchUps > catchUps && st.Serving
	})
	close(release)
	if got := <-done; got != "old" {
		t.Errorf("GetOrLoad = %q, want the loaded value", got)
	}
	if v, err := b.Get("loaded"); err == nil {
		t.Errorf("Get after a load that raced a replayed invalidation = %q; want a miss", v)
	}
	if !holds(b, "keep", "v") {
		t.Error("the node cleared instead of catching up")
	}
}

// A Redis restarted with AOF persistence (appendfsync always) kept its log:
// the node catches up instead of clearing.
func TestCacheCatchUpAfterRestartWithAOF(t *testing.T) {
	leakcheck.Check(t)
	srv, px, a, b := pairViaProxy(t, redisserver.Options{Args: []string{"--appendonly", "yes", "--appendfsync", "always"}}, nil)
	catchUps, clears := b.Stats().Invalidation.CatchUps, gapClears(b)
	px.Refuse() // b stays away until the write after the restart
	srv.Kill()
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := a.Delete("gone", option.WithDeleteInvalidation()); err != nil {
		t.Fatal(err)
	}
	flush(t, a)
	px.Accept()
	checkCaughtUp(t, b, catchUps, clears)
}
