package invacache_test

import (
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/backend/option"
	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
)

// Stats tells a local cache from a distributed one, and which misses were
// refused because the node could not serve (what a metrics exporter needs).
func TestStatsDistributedAndNotServingMisses(t *testing.T) {
	leakcheck.Check(t)
	local, err := invacache.NewCache[string](config.InvaCacheConfig{})
	if err != nil {
		t.Fatalf("NewCache: %v", err)
	}
	defer local.Close()
	local.Get("absent")
	if st := local.Stats(); st.Distributed || st.Misses != 1 || st.NotServingMisses != 0 {
		t.Errorf("local cache: Distributed=%v Misses=%d NotServingMisses=%d, want false 1 0", st.Distributed, st.Misses, st.NotServingMisses)
	}

	const bound = 200 * time.Millisecond
	n := newNodes(t, 1, func(ic *config.InvalidationConfig) { ic.MaxStaleness = bound })[0]
	n.Get("absent")
	if st := n.Stats(); !st.Distributed || st.Misses != 1 || st.NotServingMisses != 0 {
		t.Errorf("serving node: Distributed=%v Misses=%d NotServingMisses=%d, want true 1 0", st.Distributed, st.Misses, st.NotServingMisses)
	}
	n.conn.Stall()
	eventually(t, bound+2*time.Second, "a stalled link should stop serving", func() bool { return !n.Stats().Invalidation.Serving })
	before := n.Stats()
	n.Get("absent")
	n.Get("absent")
	st := n.Stats()
	if got, want := st.Misses-before.Misses, uint64(2); got != want {
		t.Errorf("misses while not serving = %d, want %d", got, want)
	}
	if got, want := st.NotServingMisses-before.NotServingMisses, uint64(2); got != want {
		t.Errorf("NotServingMisses while not serving = %d, want %d", got, want)
	}
	n.conn.Unstall()
}

// Each published batch is timed from its oldest broadcast to the driver
// accepting it, retries included.
func TestStatsPublishLatency(t *testing.T) {
	leakcheck.Check(t)
	const backoff = 200 * time.Millisecond
	n := newNodes(t, 1, func(ic *config.InvalidationConfig) { ic.RetryBackoffMin, ic.RetryBackoffMax = backoff, backoff })[0]
	if st := n.Stats().Invalidation; st.PublishLatencyCount != 0 {
		t.Fatalf("PublishLatencyCount before any broadcast = %d, want 0", st.PublishLatencyCount)
	}
	n.Set("k", "v", option.WithInvalidation())
	flush(t, n)
	st := n.Stats().Invalidation
	if st.PublishLatencyCount != 1 || st.PublishLatencyBuckets[len(st.PublishLatencyBuckets)-1] > 1 || st.PublishLatencySum <= 0 {
		t.Fatalf("after one batch: count %d, sum %v, buckets %v; want count 1, a positive sum", st.PublishLatencyCount, st.PublishLatencySum, st.PublishLatencyBuckets)
	}

	// One failed attempt: the batch waits at least half the backoff (the
	// jitter's floor) before it is accepted.
	n.conn.FailPublish(1)
	n.Delete("k", option.WithDeleteInvalidation())
	flush(t, n)
	st2 := n.Stats().Invalidation
	if st2.PublishLatencyCount != 2 || st2.PublishLatencySum-st.PublishLatencySum < backoff/2 {
		t.Errorf("after a retried batch: count %d, its latency %v; want count 2 and at least %v", st2.PublishLatencyCount, st2.PublishLatencySum-st.PublishLatencySum, backoff/2)
	}
	bounds := invacache.PublishLatencyBounds()
	for i, b := range bounds {
		if b < backoff/2 && st2.PublishLatencyBuckets[i] != st.PublishLatencyBuckets[i] {
			t.Errorf("bucket <= %v grew with a batch that took at least %v", b, backoff/2)
		}
		if i > 0 && st2.PublishLatencyBuckets[i] < st2.PublishLatencyBuckets[i-1] {
			t.Errorf("buckets not cumulative: %v", st2.PublishLatencyBuckets)
		}
	}
	if len(bounds) != len(st2.PublishLatencyBuckets) {
		t.Errorf("%d bounds for %d buckets", len(bounds), len(st2.PublishLatencyBuckets))
	}
}
