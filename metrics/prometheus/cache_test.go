package prometheus_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/backend/option"
	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
	"github.com/halilbulentorhon/invacache-go/invalidation/drivers/memory"
	invaprom "github.com/halilbulentorhon/invacache-go/metrics/prometheus"
	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Real caches of different value types attach by their Stats method; a
// scrape follows what they did.
func TestCollectorOverRealCaches(t *testing.T) {
	leakcheck.Check(t)
	bus := memory.NewBus()
	defer bus.Close()
	ca, cb := bus.Connect(), bus.Connect()
	defer ca.Close()
	defer cb.Close()
	a, err := invacache.NewCache[string](config.InvaCacheConfig{Invalidation: &config.InvalidationConfig{Driver: ca}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := invacache.NewCache[int](config.InvaCacheConfig{Invalidation: &config.InvalidationConfig{Driver: cb}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	col, err := invaprom.NewCollector(invaprom.Cache{Name: "a", Stats: a.Stats}, invaprom.Cache{Name: "b", Stats: b.Stats})
	if err != nil {
		t.Fatal(err)
	}
	reg := prom.NewPedanticRegistry()
	reg.MustRegister(col)

	b.Set("k", 1)
	b.Get("k")
	b.Get("absent")
	a.Set("k", "v", option.WithInvalidation())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for b.Stats().Invalidation.MessagesApplied < 1 {
		if time.Now().After(deadline) {
			t.Fatal("b never applied a's invalidation")
		}
		time.Sleep(time.Millisecond)
	}
	want := `
# HELP invacache_hits_total Lookups (Get, GetOrLoad) answered from the cache.
# TYPE invacache_hits_total counter
invacache_hits_total{name="a"} 0
invacache_hits_total{name="b"} 1
# HELP invacache_entries Entries held now.
# TYPE invacache_entries gauge
invacache_entries{name="a"} 1
invacache_entries{name="b"} 0
# HELP invacache_invalidation_messages_applied_total Peers' messages applied to the cache (envelopes and raw keys).
# TYPE invacache_invalidation_messages_applied_total counter
invacache_invalidation_messages_applied_total{name="a"} 0
invacache_invalidation_messages_applied_total{name="b"} 1
# HELP invacache_invalidation_keys_sent_total Keys in published invalidation messages (after coalescing duplicates).
# TYPE invacache_invalidation_keys_sent_total counter
invacache_invalidation_keys_sent_total{name="a"} 1
invacache_invalidation_keys_sent_total{name="b"} 0
# HELP invacache_link_up 1 while the subscription is established, else 0.
# TYPE invacache_link_up gauge
invacache_link_up{name="a"} 1
invacache_link_up{name="b"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "invacache_hits_total", "invacache_entries",
		"invacache_invalidation_messages_applied_total", "invacache_invalidation_keys_sent_total", "invacache_link_up"); err != nil {
		t.Error(err)
	}
}
