package redisserver

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
)

func TestCluster3Masters(t *testing.T) {
	leakcheck.Check(t)
	start := time.Now()
	c := StartClusterT(t, ClusterOptions{Masters: 3})
	t.Logf("3-master cluster ready in %v", time.Since(start))
	if got := len(c.Addrs()); got != 3 {
		t.Fatalf("len(Addrs) = %d; want 3", got)
	}
	masters, err := c.Masters()
	if err != nil || len(masters) != 3 {
		t.Fatalf("Masters = %d nodes, %v; want 3", len(masters), err)
	}
	for _, key := range []string{"a", "b", "invacache:events", "{tag}x"} {
		m, err := c.MasterForKey(key)
		if err != nil {
			t.Fatalf("MasterForKey(%q): %v", key, err)
		}
		// The owner accepts the key; a non-owner answers MOVED.
		if got, err := m.Do("SET", key, "v"); err != nil || got != "OK" {
			t.Fatalf("SET %q on its master %s = %q, %v; want OK", key, m.Addr(), got, err)
		}
		for _, other := range masters {
			if other == m {
				continue
			}
			if _, err := other.Do("SET", key, "v"); err == nil || !strings.Contains(err.Error(), "MOVED") {
				t.Fatalf("SET %q on non-owner %s err = %v; want MOVED", key, other.Addr(), err)
			}
		}
	}
	if c.Node(3) != nil || c.Node(-1) != nil || c.Node(0) == nil {
		t.Fatal("Node(i) bounds wrong")
	}
}

func TestClusterFailover(t *testing.T) {
	leakcheck.Check(t)
	start := time.Now()
	c := StartClusterT(t, ClusterOptions{Masters: 3, ReplicasPerMaster: 1})
	t.Logf("3+3 cluster ready in %v", time.Since(start))
	slot, err := c.KeySlot("channel")
	if err != nil {
		t.Fatal(err)
	}
	old, err := c.MasterForSlot(slot)
	if err != nil {
		t.Fatal(err)
	}
	old.Kill()
	start = time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := c.WaitFailover(ctx, slot)
	if err != nil {
		t.Fatalf("WaitFailover: %v", err)
	}
	t.Logf("failover took %v", time.Since(start))
	if m == old {
		t.Fatalf("slot %d still on the killed master %s", slot, old.Addr())
	}
	if got, err := m.Do("SET", "channel", "v"); err != nil || got != "OK" {
		t.Fatalf("SET on the new master = %q, %v; want OK", got, err)
	}
	// The old master comes back as a replica; the cluster stays ok.
	if err := old.Restart(); err != nil {
		t.Fatalf("Restart old master: %v", err)
	}
	if err := c.WaitState(ctx); err != nil {
		t.Fatalf("WaitState after restart: %v", err)
	}
}
