package redis_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/backend/option"
	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
	"github.com/halilbulentorhon/invacache-go/internal/redisserver"
)

// Redis Cluster: PUBLISH reaches subscribers on every node; SPUBLISH and
// SSUBSCRIBE go to the shard owning the channel's slot.
func TestCluster(t *testing.T) {
	leakcheck.Check(t)
	cl := redisserver.StartClusterT(t, redisserver.ClusterOptions{Masters: 3, NodeTimeout: 5 * time.Second})
	addrs := cl.Addrs()
	for _, tc := range []struct {
		name    string
		sharded bool
	}{{"PUBLISH", false}, {"SPUBLISH", true}} {
		t.Run(tc.name, func(t *testing.T) {
			ch := "cluster:" + tc.name
			// The two nodes are seeded with different addresses: different
			// connection settings, so they do not share connections.
			small := func(ic *config.InvalidationConfig) { ic.MaxMessageBytes = 1024 }
			a := node(t, map[string]any{"Addresses": addrs, "Channel": ch, "ShardedPubSub": tc.sharded}, small)
			b := node(t, map[string]any{"Addresses": []any{addrs[1], addrs[2], addrs[0]}, "Channel": ch, "ShardedPubSub": tc.sharded}, small)
			checkPair(t, a, b)
			checkPair(t, b, a)

			// A burst becomes a pipeline of many messages. They must reach
			// the peer in order: a reorder looks like a loss, and the peer
			// would clear its whole cache for nothing.
			gaps := b.Stats().Invalidation.Gaps
			for i := range 3000 {
				a.Delete(fmt.Sprintf("burst:%d", i), option.WithDeleteInvalidation())
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := a.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			checkPair(t, a, b) // everything before it has arrived too
			if sent, got := a.Stats().Invalidation.MessagesSent, b.Stats().Invalidation.Gaps-gaps; got != 0 {
				t.Errorf("peer saw %d sequence gaps over a burst of %d messages, want 0 (messages reordered)", got, sent)
			}
			if tc.sharded {
				return
			}
			// An operator's PUBLISH on any node reaches every subscriber.
			for _, n := range cl.Nodes() {
				setAll(t, []invacache.Cache[string]{a, b}, "user:1", "v")
				if _, err := n.Do("PUBLISH", ch, "user:1"); err != nil {
					t.Fatal(err)
				}
				eventually(t, 5*time.Second, "raw key published on "+n.Addr(), func() bool { return missing(a, "user:1") && missing(b, "user:1") })
			}
		})
	}
}

// Sentinel: the driver follows a failover; the nodes resubscribe to the new
// master, clear, and propagate again.
func TestSentinelFailover(t *testing.T) {
	leakcheck.Check(t)
	st := redisserver.StartSentinelT(t, redisserver.SentinelOptions{Replicas: 1, Sentinels: 1})
	typed := func(order []string) *config.RedisInvalidationConfig {
		return &config.RedisInvalidationConfig{MasterName: st.MasterName(), Addresses: order, Channel: "sentinel", DialTimeout: time.Second}
	}
	mk := func(r *config.RedisInvalidationConfig) invacache.Cache[string] {
		c, err := invacache.NewCache[string](config.InvaCacheConfig{Invalidation: &config.InvalidationConfig{
			Type: "redis", Redis: r, RetryBackoffMax: 100 * time.Millisecond,
		}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	a := mk(typed(st.SentinelAddrs()))
	b := mk(typed(st.SentinelAddrs()))
	checkPair(t, a, b)

	old, err := st.Master()
	if err != nil {
		t.Fatal(err)
	}
	setAll(t, []invacache.Cache[string]{a, b}, "k", "v")
	gaps, catchUps := b.Stats().Invalidation.ClearsOnGap, b.Stats().Invalidation.CatchUps
	if _, err := st.KillMaster(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := st.WaitFailover(ctx, old); err != nil {
		t.Fatal(err)
	}
	if err := a.Delete("k", option.WithDeleteInvalidation()); err != nil {
		t.Fatal(err)
	}
	flush(t, a)
	// The promoted replica holds the replicated log: the peer catches up
	// from it, or clears when it cannot prove continuity.
	eventually(t, 20*time.Second, "peer cleared or caught up after failover", func() bool {
		st := b.Stats().Invalidation
		return st.ClearsOnGap > gaps || st.CatchUps > catchUps
	})
	droppedWhileServing(t, b, "k")
	checkPair(t, a, b)
}

// droppedWhileServing waits until c serves again without key: a peer that
// caught up before the delete was published receives it live, a moment
// after the writer's Flush returned.
func droppedWhileServing(t testing.TB, c invacache.Cache[string], key string) {
	t.Helper()
	eventually(t, 20*time.Second, key+" gone from the serving peer", func() bool {
		return c.Stats().Invalidation.Serving && missing(c, key)
	})
	if holds(c, key, "v") {
		t.Errorf("%s survived the failover on the peer", key)
	}
}

// A cluster whose channel's master fails, with classic and with sharded
// Pub/Sub: the nodes follow the slot to the promoted replica, clear, and
// propagate again.
func TestClusterFailover(t *testing.T) {
	for _, sharded := range []bool{false, true} {
		t.Run(fmt.Sprintf("sharded=%v", sharded), func(t *testing.T) {
			testClusterFailover(t, sharded)
		})
	}
}

func testClusterFailover(t *testing.T, sharded bool) {
	leakcheck.Check(t)
	cl := redisserver.StartClusterT(t, redisserver.ClusterOptions{Masters: 3, ReplicasPerMaster: 1, NodeTimeout: time.Second})
	const ch = "cluster:failover"
	tune := func(ic *config.InvalidationConfig) { ic.RetryBackoffMax = 100 * time.Millisecond }
	addrs := cl.Addrs()
	a := node(t, map[string]any{"Addresses": addrs, "Channel": ch, "ShardedPubSub": sharded, "DialTimeout": "1s"}, tune)
	b := node(t, map[string]any{"Addresses": []any{addrs[1], addrs[0]}, "Channel": ch, "ShardedPubSub": sharded, "DialTimeout": "1s"}, tune)
	checkPair(t, a, b)

	slot, err := cl.KeySlot(ch)
	if err != nil {
		t.Fatal(err)
	}
	master, err := cl.MasterForSlot(slot)
	if err != nil {
		t.Fatal(err)
	}
	setAll(t, []invacache.Cache[string]{a, b}, "k", "v")
	gaps, catchUps := b.Stats().Invalidation.ClearsOnGap, b.Stats().Invalidation.CatchUps
	master.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cl.WaitFailover(ctx, slot); err != nil {
		t.Fatal(err)
	}
	if err := a.Delete("k", option.WithDeleteInvalidation()); err != nil {
		t.Fatal(err)
	}
	flush(t, a)
	// The peer drops k: by a catch-up from the promoted replica's log, by a
	// clear when it cannot prove continuity, or live (classic Pub/Sub
	// reaches every node, so a subscription on a surviving node never
	// dropped).
	droppedWhileServing(t, b, "k")
	if st := b.Stats().Invalidation; st.ClearsOnGap == gaps && st.CatchUps == catchUps {
		t.Logf("the peer's subscription survived the failover (no gap)")
	}
	deadline := time.Now().Add(20 * time.Second)
	for !(a.Stats().Invalidation.Serving && b.Stats().Invalidation.Serving) {
		if time.Now().After(deadline) {
			t.Fatalf("not serving 20s after failover: a %+v\nb %+v", a.Stats().Invalidation, b.Stats().Invalidation)
		}
		time.Sleep(10 * time.Millisecond)
	}
	checkPair(t, a, b)
	checkPair(t, b, a)
}

// TLS on a cluster and on Sentinel (sentinels serve TLS too): one CA.
func TestTLSTopologies(t *testing.T) {
	leakcheck.Check(t)
	if !redisserver.TLSSupported() {
		t.Skip("the installed redis-server was built without TLS support")
	}
	tlsMap := func(cc redisserver.ClientCerts) map[string]any {
		return map[string]any{"Enabled": true, "CAFile": cc.CAFile, "CertFile": cc.CertFile, "KeyFile": cc.KeyFile, "ServerName": "localhost"}
	}
	t.Run("cluster", func(t *testing.T) {
		cl := redisserver.StartClusterT(t, redisserver.ClusterOptions{Masters: 3, NodeTimeout: 5 * time.Second, Node: redisserver.Options{TLS: true}})
		dc := map[string]any{"Addresses": cl.Addrs(), "Channel": "tls-cluster", "TLS": tlsMap(cl.Node(0).ClientCerts())}
		checkPair(t, node(t, dc), node(t, dc))
	})
	t.Run("sentinel", func(t *testing.T) {
		st := redisserver.StartSentinelT(t, redisserver.SentinelOptions{Sentinels: 1, Node: redisserver.Options{TLS: true}})
		dc := map[string]any{"MasterName": st.MasterName(), "Addresses": st.SentinelAddrs(), "Channel": "tls-sentinel",
			"TLS": tlsMap(st.Servers()[0].ClientCerts())}
		checkPair(t, node(t, dc), node(t, dc))
	})
}
