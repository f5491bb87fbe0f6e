package engine

import (
	"sync/atomic"
	"time"
)

// LatencyBuckets is the number of finite buckets of Stats.PublishLatencyBuckets.
const LatencyBuckets = 16

// latencyBounds are the buckets' inclusive upper bounds.
var latencyBounds = [LatencyBuckets]time.Duration{
	100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
}

// LatencyBounds returns the upper bounds of Stats.PublishLatencyBuckets.
func LatencyBounds() []time.Duration { return append([]time.Duration(nil), latencyBounds[:]...) }

// latencyHist counts durations into latencyBounds; safe for concurrent use.
type latencyHist struct {
	sum     atomic.Int64                      // nanoseconds
	buckets [LatencyBuckets + 1]atomic.Uint64 // per bucket, not cumulative; the last is +Inf
}

func (h *latencyHist) observe(d time.Duration) {
	i := 0
	for i < LatencyBuckets && d > latencyBounds[i] {
		i++
	}
	h.buckets[i].Add(1)
	h.sum.Add(int64(d))
}

// snapshot returns the count, the sum and the cumulative counts. The count
// is the sum of the buckets, so it always equals the +Inf bucket.
func (h *latencyHist) snapshot() (count uint64, sum time.Duration, cum [LatencyBuckets]uint64) {
	for i := range h.buckets {
		count += h.buckets[i].Load()
		if i < LatencyBuckets {
			cum[i] = count
		}
	}
	return count, time.Duration(h.sum.Load()), cum
}
