package invacache_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/backend/option"
	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
	"github.com/halilbulentorhon/invacache-go/invalidation/drivers/memory"
)

// The catch-up tests run two caches on the in-process bus, whose log has the
// Redis driver's semantics: node 0 writes while node 1 is cut off, then node
// 1 comes back and either catches up (keeps its other entries) or clears;
// either way it never serves the value node 0 invalidated.

// staleWatch reads key on c until stop is called and reports whether it ever
// served stale.
func staleWatch(c invacache.Cache[string], key, stale string) (stop func() bool) {
	var seen atomic.Bool
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			if v, err := c.Get(key); err == nil && v == stale {
				seen.Store(true)
			}
		}
	}()
	return func() bool {
		close(done)
		wg.Wait()
		return seen.Load()
	}
}

// clearsBy returns c's clears for reason.
func clearsBy(c invacache.Cache[string], reason string) uint64 {
	return c.Stats().Invalidation.ClearsByReason[reason]
}

// shortBound is the MaxStaleness of the nodes cutOff disconnects: a node
// whose link is down serves until its last proof plus MaxStaleness.
func shortBound(ic *config.InvalidationConfig) { ic.MaxStaleness = 300 * time.Millisecond }

// cutOff writes k=v1 and other=o on node 1, disconnects it, waits until it
// stops serving (MaxStaleness after its last proof of life: until then it
// may serve what it holds, by the contract), and lets node 0 write k=v2
// with invalidation while it is away.
func cutOff(t *testing.T, nodes []node) {
	t.Helper()
	nodes[1].Set("k", "v1")
	nodes[1].Set("other", "o")
	nodes[1].conn.Disconnect()
	eventually(t, 5*time.Second, "node 1's link down, not serving", func() bool {
		st := nodes[1].Stats().Invalidation
		return !st.LinkUp && !st.Serving
	})
	if err := nodes[0].Set("k", "v2", option.WithInvalidation()); err != nil {
		t.Fatal(err)
	}
	flush(t, nodes[0].Cache)
}

// A short disconnect while a peer writes: the node catches up from the log,
// keeps its other entries, and never serves the value invalidated while it
// was away.
func TestCatchUpAfterShortDisconnect(t *testing.T) {
	leakcheck.Check(t)
	nodes := newNodes(t, 2, shortBound)
	cutOff(t, nodes)
	stop := staleWatch(nodes[1], "k", "v1")
	nodes[1].conn.Reconnect()
	eventually(t, 2*time.Second, "node 1's catch-up", func() bool {
		st := nodes[1].Stats().Invalidation
		return st.CatchUps == 1 && st.Serving
	})
	if stop() {
		t.Errorf("node 1 served k=v1 after node 0 invalidated it")
	}
	if _, err := nodes[1].Get("k"); !errors.Is(err, invacache.ErrNotFound) {
		t.Errorf("Get(k) after the catch-up = %v, want ErrNotFound", err)
	}
	if !holds(nodes[1], "other", "o") {
		t.Errorf("node 1 lost an entry nobody invalidated: the catch-up cleared")
	}
	st := nodes[1].Stats().Invalidation
	if st.KeysReplayed != 1 || st.ClearsOnGap != 1 || clearsBy(nodes[1], invacache.ClearReasonFirstSubscribe) != 1 {
		t.Errorf("keysReplayed/clearsOnGap/byReason = %d/%d/%v, want 1/1/{first_subscribe:1}", st.KeysReplayed, st.ClearsOnGap, st.ClearsByReason)
	}
}

// A lapse longer than MaxStaleness (a stuck link that also lost a message):
// the node stops serving, and when the proof of life returns it catches up
// instead of clearing.
func TestCatchUpAfterLapse(t *testing.T) {
	leakcheck.Check(t)
	const bound = 200 * time.Millisecond
	nodes := newNodes(t, 2, func(ic *config.InvalidationConfig) { ic.MaxStaleness = bound })
	nodes[1].Set("k", "v1")
	nodes[1].Set("other", "o")
	nodes[1].conn.Stall()
	nodes[1].conn.DropNext(1)
	if err := nodes[0].Set("k", "v2", option.WithInvalidation()); err != nil {
		t.Fatal(err)
	}
	flush(t, nodes[0].Cache)
	eventually(t, bound+2*time.Second, "node 1 to stop serving", func() bool { return !nodes[1].Stats().Invalidation.Serving })
	stop := staleWatch(nodes[1], "k", "v1")
	nodes[1].conn.Unstall()
	eventually(t, 2*time.Second, "node 1's catch-up", func() bool {
		st := nodes[1].Stats().Invalidation
		return st.CatchUps >= 1 && st.Serving
	})
	if stop() {
		t.Errorf("node 1 served k=v1 after node 0 invalidated it")
	}
	if _, err := nodes[1].Get("k"); !errors.Is(err, invacache.ErrNotFound) {
		t.Errorf("Get(k) after the catch-up = %v, want ErrNotFound", err)
	}
	if !holds(nodes[1], "other", "o") {
		t.Errorf("node 1 lost an entry nobody invalidated: the lapse cleared")
	}
}

// When the log cannot cover what the node missed, it clears, and it never
// serves the value invalidated while it was away.
func TestClearWhenLogCannotCatchUp(t *testing.T) {
	const window = 50 * time.Millisecond
	tests := []struct {
		name   string
		bus    memory.BusConfig
		fault  func(bus *memory.Bus, nodes []node)
		reason string
	}{
		{"log trimmed past the cursor", memory.BusConfig{}, func(bus *memory.Bus, _ []node) { bus.TrimLog() }, invacache.ClearReasonNoContinuity},
		{"away longer than the replay window", memory.BusConfig{ReplayWindow: window}, func(*memory.Bus, []node) {
			time.Sleep(2 * window) // the entries of k age past the window
		}, invacache.ClearReasonNoContinuity},
		{"new epoch (restart without persistence)", memory.BusConfig{}, func(bus *memory.Bus, _ []node) { bus.Restart() }, invacache.ClearReasonNoContinuity},
		{"replay disabled", memory.BusConfig{DisableReplay: true}, func(*memory.Bus, []node) {}, invacache.ClearReasonReplayDisabled},
		{"malformed entry in the log", memory.BusConfig{}, func(bus *memory.Bus, _ []node) {
			c := bus.Connect()
			defer c.Close()
			_ = c.Publish(context.Background(), [][]byte{[]byte("\x00ivc1 garbage")})
		}, invacache.ClearReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakcheck.Check(t)
			bus, err := memory.NewBusWith(tt.bus)
			if err != nil {
				t.Fatal(err)
			}
			nodes := newNodesOn(t, bus, 2, shortBound)
			cutOff(t, nodes)
			tt.fault(bus, nodes)
			// A later write, so the log holds something after the fault.
			if err := nodes[0].Set("later", "x", option.WithInvalidation()); err != nil {
				t.Fatal(err)
			}
			flush(t, nodes[0].Cache)
			stop := staleWatch(nodes[1], "k", "v1")
			nodes[1].conn.Reconnect()
			eventually(t, 2*time.Second, "node 1's clear", func() bool {
				return clearsBy(nodes[1], tt.reason) == 1 && nodes[1].Stats().Invalidation.Serving
			})
			if stop() {
				t.Errorf("node 1 served k=v1 after node 0 invalidated it")
			}
			if _, err := nodes[1].Get("other"); !errors.Is(err, invacache.ErrNotFound) {
				t.Errorf("Get(other) = %v, want ErrNotFound (cleared)", err)
			}
			if st := nodes[1].Stats().Invalidation; st.CatchUps != 0 || st.ClearsOnGap != 2 {
				t.Errorf("catchUps/clearsOnGap = %d/%d, want 0/2", st.CatchUps, st.ClearsOnGap)
			}
		})
	}
}

// A peer that publishes outside the log (replay disabled on it, as during a
// rolling change of DisableReplay): the log cannot cover its messages, so
// the next gap clears.
func TestUnloggedPeerForcesClear(t *testing.T) {
	leakcheck.Check(t)
	bus := memory.NewBus()
	nodes := newNodesOn(t, bus, 2, nil)
	nodes[0].conn.DisableReplay()
	nodes[1].Set("other", "o")
	if err := nodes[0].Delete("k", option.WithDeleteInvalidation()); err != nil {
		t.Fatal(err)
	}
	flush(t, nodes[0].Cache)
	eventually(t, 2*time.Second, "node 1 to apply the unlogged message", func() bool {
		return nodes[1].Stats().Invalidation.MessagesApplied >= 1
	})
	nodes[1].conn.Disconnect()
	nodes[1].conn.Reconnect()
	eventually(t, 2*time.Second, "node 1's clear", func() bool {
		return clearsBy(nodes[1], invacache.ClearReasonUnloggedPeer) == 1
	})
	if _, err := nodes[1].Get("other"); !errors.Is(err, invacache.ErrNotFound) {
		t.Errorf("Get(other) = %v, want ErrNotFound (cleared)", err)
	}
}

// Rule 5 across a catch-up: a GetOrLoad that was loading while the node was
// cut off must not cache its value when a replayed entry invalidated the key.
func TestLoadAcrossCatchUpNotCached(t *testing.T) {
	leakcheck.Check(t)
	nodes := newNodes(t, 2, nil)
	inLoader, release := make(chan struct{}), make(chan struct{})
	done := make(chan string)
	go func() {
		v, _ := nodes[1].GetOrLoad("k", func(string) (string, time.Duration, error) {
			close(inLoader)
			<-release
			return "old", 0, nil
		})
		done <- v
	}()
	<-inLoader
	nodes[1].conn.Disconnect()
	eventually(t, 2*time.Second, "node 1's link down", func() bool { return !nodes[1].Stats().Invalidation.LinkUp })
	if err := nodes[0].Set("k", "new", option.WithInvalidation()); err != nil {
		t.Fatal(err)
	}
	flush(t, nodes[0].Cache)
	nodes[1].conn.Reconnect()
	eventually(t, 2*time.Second, "node 1's catch-up", func() bool {
		st := nodes[1].Stats().Invalidation
		return st.CatchUps == 1 && st.Serving
	})
	close(release)
	if got := <-done; got != "old" {
		t.Errorf("GetOrLoad = %q, want the loaded value", got)
	}
	if v, err := nodes[1].Get("k"); !errors.Is(err, invacache.ErrNotFound) {
		t.Errorf("Get(k) after a load that raced a replayed invalidation = %q, %v; want ErrNotFound", v, err)
	}
	if st := nodes[1].Stats().Invalidation; st.KeysReplayed != 1 || st.ClearsOnGap != 1 {
		t.Errorf("keysReplayed/clearsOnGap = %d/%d, want 1/1 (caught up, not cleared)", st.KeysReplayed, st.ClearsOnGap)
	}
}

// The reason constants are what ClearsByReason holds, and valid metric
// label values.
func TestClearReasons(t *testing.T) {
	reasons := invacache.ClearReasons()
	if len(reasons) == 0 {
		t.Fatal("ClearReasons() is empty")
	}
	seen := map[string]bool{}
	for _, r := range reasons {
		if seen[r] {
			t.Errorf("reason %q listed twice", r)
		}
		seen[r] = true
		for _, c := range r {
			if !(c >= 'a' && c <= 'z' || c == '_') {
				t.Errorf("reason %q: %q is not a lower-case letter or _", r, c)
			}
		}
	}
	// The exported constants are exactly the reasons the engine reports.
	consts := []string{invacache.ClearReasonFirstSubscribe, invacache.ClearReasonReplayDisabled,
		invacache.ClearReasonNoCursor, invacache.ClearReasonNoContinuity, invacache.ClearReasonReplayError,
		invacache.ClearReasonMalformed, invacache.ClearReasonUnknownVersion, invacache.ClearReasonIDBackwards,
		invacache.ClearReasonUnloggedPeer, invacache.ClearReasonGapFlood, invacache.ClearReasonPeer}
	for _, r := range consts {
		if !seen[r] {
			t.Errorf("ClearReasons() lacks %q", r)
		}
	}
	if len(consts) != len(reasons) {
		t.Errorf("ClearReasons() = %v, the ClearReason constants are %v: want the same set", reasons, consts)
	}
}
