package invacache_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/backend/option"
	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
	"github.com/halilbulentorhon/invacache-go/invalidation/drivers/memory"
)

// node is one cache on an in-process bus, with its link for fault injection.
type node struct {
	invacache.Cache[string]
	conn *memory.Conn
}

func newNodes(t *testing.T, n int, tune func(*config.InvalidationConfig)) []node {
	t.Helper()
	return newNodesOn(t, memory.NewBus(), n, tune)
}

// newNodesNoLog is newNodes on a bus whose replay log is off: gaps clear.
func newNodesNoLog(t *testing.T, n int, tune func(*config.InvalidationConfig)) []node {
	t.Helper()
	bus, err := memory.NewBusWith(memory.BusConfig{DisableReplay: true})
	if err != nil {
		t.Fatal(err)
	}
	return newNodesOn(t, bus, n, tune)
}

// newNodesOn starts n caches on bus and closes them and bus at the end of
// the test.
func newNodesOn(t *testing.T, bus *memory.Bus, n int, tune func(*config.InvalidationConfig)) []node {
	t.Helper()
	t.Cleanup(func() { bus.Close() })
	nodes := make([]node, n)
	for i := range nodes {
		conn := bus.Connect()
		ic := &config.InvalidationConfig{Driver: conn, MaxStaleness: 2 * time.Second}
		if tune != nil {
			tune(ic)
		}
		c, err := invacache.NewCache[string](config.InvaCacheConfig{Invalidation: ic})
		if err != nil {
			t.Fatalf("NewCache node %d: %v", i, err)
		}
		t.Cleanup(func() {
			c.Close()
			conn.Close()
		})
		nodes[i] = node{c, conn}
	}
	return nodes
}

func flush(t *testing.T, c invacache.Cache[string]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

func missing(c invacache.Cache[string], key string) func() bool {
	return func() bool {
		_, err := c.Get(key)
		return errors.Is(err, invacache.ErrNotFound)
	}
}

func holds(c invacache.Cache[string], key, want string) bool {
	v, err := c.Get(key)
	return err == nil && v == want
}

// Rule 1 and propagation: the writer keeps its value, every peer drops its copy.
func TestSetWithInvalidationPropagatesAndSuppressesSelf(t *testing.T) {
	leakcheck.Check(t)
	nodes := newNodes(t, 3, nil)
	for _, n := range nodes {
		n.Set("user:1", "v1")
	}
	if err := nodes[0].Set("user:1", "v2", option.WithInvalidation()); err != nil {
		t.Fatal(err)
	}
	flush(t, nodes[0].Cache)
	for i, n := range nodes[1:] {
		eventually(t, 2*time.Second, fmt.Sprintf("peer %d should drop user:1", i+1), missing(n, "user:1"))
	}
	// Peers applied the message, so the writer has seen its own by now too.
	eventually(t, 2*time.Second, "writer should ignore its own broadcast", func() bool {
		return nodes[0].Stats().Invalidation.IgnoredOwn >= 1
	})
	if !holds(nodes[0], "user:1", "v2") {
		t.Errorf("writer lost its own write: Get(user:1) != v2")
	}
}

func TestDeleteAndClearPropagate(t *testing.T) {
	leakcheck.Check(t)
	nodes := newNodes(t, 3, nil)
	for _, n := range nodes {
		n.Set("a", "1")
		n.Set("b", "1")
	}
	nodes[1].Delete("a", option.WithDeleteInvalidation())
	for i, n := range nodes {
		eventually(t, 2*time.Second, fmt.Sprintf("node %d should drop a", i), missing(n, "a"))
	}
	if !holds(nodes[0], "b", "1") {
		t.Fatalf("a Delete of a must leave b")
	}
	nodes[2].Clear(option.WithClearInvalidation())
	for i, n := range nodes {
		eventually(t, 2*time.Second, fmt.Sprintf("node %d should be cleared", i), missing(n, "b"))
	}
	// A plain write stays local (broadcasting is opt-in).
	nodes[0].Set("c", "1")
	nodes[1].Set("c", "1")
	nodes[0].Set("c", "2")
	nodes[0].Delete("c")
	flush(t, nodes[0].Cache)
	if !holds(nodes[1], "c", "1") {
		t.Errorf("a plain Set/Delete on node 0 changed node 1")
	}
	if got := nodes[0].Stats().Invalidation.BroadcastsQueued; got != 0 {
		t.Errorf("node 0 queued %d broadcasts after plain writes only, want 0", got)
	}
}

// Rule 2: a broadcast requested while the bus is down is retried, not dropped.
func TestBroadcastWhileBusDownIsDelivered(t *testing.T) {
	leakcheck.Check(t)
	nodes := newNodes(t, 2, nil)
	nodes[1].Set("k", "old")
	nodes[0].conn.Disconnect()
	nodes[0].Set("k", "new", option.WithInvalidation())
	eventually(t, 2*time.Second, "the publish should fail while disconnected", func() bool {
		return nodes[0].Stats().Invalidation.PublishFailures > 0
	})
	nodes[0].conn.Reconnect()
	flush(t, nodes[0].Cache)
	eventually(t, 2*time.Second, "the retried broadcast should reach node 1", missing(nodes[1], "k"))
}

// Rule 3: after a possible loss the peer clears before it serves again
// (without a replay log; replay_test.go has the catch-up).
func TestGapClearsTheCache(t *testing.T) {
	leakcheck.Check(t)
	nodes := newNodesNoLog(t, 2, nil)
	nodes[0].Set("x", "1", option.WithInvalidation()) // establishes node 0's sequence at node 1
	flush(t, nodes[0].Cache)
	eventually(t, 2*time.Second, "node 1 should see node 0's first message", func() bool {
		return nodes[1].Stats().Invalidation.MessagesApplied >= 1
	})
	nodes[1].Set("unrelated", "stale?")
	nodes[1].conn.DropNext(1)
	nodes[0].Delete("lost", option.WithDeleteInvalidation()) // lost on the way to node 1
	flush(t, nodes[0].Cache)
	nodes[0].Delete("next", option.WithDeleteInvalidation()) // reveals the gap
	eventually(t, 2*time.Second, "the sequence gap should clear node 1", missing(nodes[1], "unrelated"))
	if got := nodes[1].Stats().Invalidation.ClearsOnGap; got == 0 {
		t.Errorf("ClearsOnGap = 0, want > 0")
	}
}

func TestReconnectClearsTheCache(t *testing.T) {
	leakcheck.Check(t)
	nodes := newNodesNoLog(t, 1, nil)
	n := nodes[0]
	n.Set("k", "v")
	n.conn.Disconnect()
	n.conn.Reconnect()
	// Not serving (a miss) is not yet cleared: wait for the clear itself.
	eventually(t, 2*time.Second, "a resubscribe should clear the cache", func() bool {
		st := n.Stats().Invalidation
		return st.ClearsByReason[invacache.ClearReasonReplayDisabled] == 1 && st.Serving
	})
	if _, err := n.Get("k"); !errors.Is(err, invacache.ErrNotFound) {
		t.Errorf("Get(k) after the resubscribe = %v, want ErrNotFound", err)
	}
	n.Set("k", "v2")
	eventually(t, 2*time.Second, "the node should serve again after the clear", func() bool { return holds(n, "k", "v2") })
}

func TestGapStrategyNoneKeepsEntries(t *testing.T) {
	leakcheck.Check(t)
	nodes := newNodes(t, 1, func(ic *config.InvalidationConfig) { ic.GapStrategy = config.GapNone })
	n := nodes[0]
	n.Set("k", "v")
	before := n.Stats().Invalidation.Gaps
	n.conn.Disconnect()
	n.conn.Reconnect()
	eventually(t, 2*time.Second, "the resubscribe should count as a gap", func() bool {
		return n.Stats().Invalidation.Gaps > before && n.Stats().Invalidation.Serving
	})
	if !holds(n, "k", "v") {
		t.Errorf("GapStrategy none cleared the cache")
	}
}

// Rule 4: without proof of a live subscription within MaxStaleness, the
// node serves nothing from cache and loads without caching.
func TestMaxStalenessStopsServing(t *testing.T) {
	leakcheck.Check(t)
	const bound = 200 * time.Millisecond
	nodes := newNodesNoLog(t, 1, func(ic *config.InvalidationConfig) { ic.MaxStaleness = bound })
	n := nodes[0]
	n.Set("k", "v")
	if !holds(n, "k", "v") {
		t.Fatal("a fresh node should serve")
	}
	n.conn.Stall()
	eventually(t, bound+2*time.Second, "a stalled link should stop serving", missing(n, "k"))
	var loads atomic.Int32
	loader := func(string) (string, time.Duration, error) { loads.Add(1); return "loaded", 0, nil }
	for range 2 {
		if v, err := n.GetOrLoad("k2", loader); err != nil || v != "loaded" {
			t.Fatalf("GetOrLoad while not serving = %q, %v; want loaded, nil", v, err)
		}
	}
	if got := loads.Load(); got != 2 {
		t.Errorf("loader calls while not serving = %d, want 2 (nothing cached)", got)
	}
	n.conn.Unstall()
	eventually(t, 2*time.Second, "the node should serve again once the link is proven alive", func() bool {
		n.Set("k3", "v3")
		return holds(n, "k3", "v3")
	})
	if holds(n, "k", "v") {
		t.Errorf("an entry from before the lapse survived: the cache should have been cleared")
	}
}

// Rule 5: a peer's invalidation during a load keeps the loaded value out of
// the cache.
func TestLoadRacingPeerInvalidation(t *testing.T) {
	leakcheck.Check(t)
	nodes := newNodes(t, 2, nil)
	inLoader := make(chan struct{})
	release := make(chan struct{})
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
	before := nodes[1].Stats().Invalidation.MessagesApplied
	nodes[0].Set("k", "new", option.WithInvalidation())
	eventually(t, 2*time.Second, "node 1 should apply the invalidation", func() bool {
		return nodes[1].Stats().Invalidation.MessagesApplied > before
	})
	close(release)
	if got := <-done; got != "old" {
		t.Errorf("GetOrLoad = %q, want the loaded value", got)
	}
	if v, err := nodes[1].Get("k"); !errors.Is(err, invacache.ErrNotFound) {
		t.Errorf("Get after a racing peer invalidation = %q, %v; want ErrNotFound", v, err)
	}
}

// Rule 6: loads, evictions and expiry never publish.
func TestOnlyExplicitWritesBroadcast(t *testing.T) {
	leakcheck.Check(t)
	bus := memory.NewBus()
	defer bus.Close()
	conn := bus.Connect()
	defer conn.Close()
	c, err := invacache.NewCache[string](config.InvaCacheConfig{
		Backend:      mem(config.InMemoryConfig{Capacity: 8, ShardCount: 1, Ttl: "10ms", SweeperInterval: 5 * time.Millisecond}),
		Invalidation: &config.InvalidationConfig{Driver: conn},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 100 {
		c.GetOrLoad(fmt.Sprint(i), func(k string) (string, time.Duration, error) { return k, 0, nil })
		c.Set(fmt.Sprint("s", i), "v")
	}
	eventually(t, 2*time.Second, "entries should expire", func() bool { return c.Stats().Expirations > 0 })
	flush(t, c)
	if st := c.Stats(); st.Invalidation.MessagesSent != 0 || st.Invalidation.BroadcastsQueued != 0 {
		t.Errorf("loads, evictions and expiry published: %+v", st.Invalidation)
	}
}

// Several caches may share one driver; closing them leaves no goroutines.
func TestManyCachesShareADriverAndCloseCleanly(t *testing.T) {
	leakcheck.Check(t)
	bus := memory.NewBus()
	defer bus.Close()
	conn := bus.Connect()
	defer conn.Close()
	caches := make([]invacache.Cache[string], 20)
	for i := range caches {
		c, err := invacache.NewCache[string](config.InvaCacheConfig{Invalidation: &config.InvalidationConfig{Driver: conn}})
		if err != nil {
			t.Fatal(err)
		}
		caches[i] = c
		c.Set("k", "v")
	}
	other := bus.Connect()
	defer other.Close()
	writer, err := invacache.NewCache[string](config.InvaCacheConfig{Invalidation: &config.InvalidationConfig{Driver: other}})
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	writer.Delete("k", option.WithDeleteInvalidation())
	for i, c := range caches {
		eventually(t, 2*time.Second, fmt.Sprintf("cache %d should drop k", i), missing(c, "k"))
		if err := c.Close(); err != nil {
			t.Errorf("Close cache %d: %v", i, err)
		}
	}
}

// The seed's Type-based selection works for the built-in in-process bus.
func TestTypeMemoryFromConfig(t *testing.T) {
	leakcheck.Check(t)
	newNamed := func() invacache.Cache[string] {
		c, err := invacache.NewCache[string](config.InvaCacheConfig{Invalidation: &config.InvalidationConfig{
			Type: "memory", DriverConfig: map[string]any{"Bus": t.Name()},
		}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	a, b := newNamed(), newNamed()
	b.Set("k", "v")
	a.Delete("k", option.WithDeleteInvalidation())
	eventually(t, 2*time.Second, "b should drop k", missing(b, "k"))

	_, err := invacache.NewCache[string](config.InvaCacheConfig{Invalidation: &config.InvalidationConfig{
		Type: "memory", DriverConfig: map[string]any{"Buss": "x"},
	}})
	if !errors.Is(err, invacache.ErrInvalidConfig) {
		t.Errorf("unknown driver key: err = %v, want ErrInvalidConfig", err)
	}
}
