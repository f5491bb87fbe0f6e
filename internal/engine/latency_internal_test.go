package engine

import (
	"testing"
	"time"
)

func TestLatencyHistBuckets(t *testing.T) {
	var h latencyHist
	for _, d := range []time.Duration{0, 100 * time.Microsecond, 101 * time.Microsecond, time.Millisecond, 10 * time.Second, time.Minute} {
		h.observe(d)
	}
	count, sum, cum := h.snapshot()
	if count != 6 {
		t.Errorf("count = %d, want 6", count)
	}
	if want := time.Minute + 10*time.Second + time.Millisecond + 201*time.Microsecond; sum != want {
		t.Errorf("sum = %v, want %v", sum, want)
	}
	// Bounds are inclusive: 100µs is in the first bucket, 101µs in the second.
	for i, want := range map[int]uint64{0: 2, 1: 3, 2: 3, 3: 4, 14: 4, 15: 5} {
		if cum[i] != want {
			t.Errorf("cumulative bucket %d (<= %v) = %d, want %d", i, latencyBounds[i], cum[i], want)
		}
	}
	if got := LatencyBounds(); len(got) != LatencyBuckets || got[0] != 100*time.Microsecond || got[LatencyBuckets-1] != 10*time.Second {
		t.Errorf("LatencyBounds() = %v", got)
	}
}
