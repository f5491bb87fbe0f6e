//go:build !race

package store

import (
	"sync"
	"testing"
)

// TestCounterBeyondItsSlots: Ps without a slot (GOMAXPROCS raised after New)
// count in the shared overflow, and nothing is lost.
func TestCounterBeyondItsSlots(t *testing.T) {
	for _, slots := range []int{0, 1} {
		c := stripedCounter{slots: make([]paddedSlot, slots)}
		const goroutines, each = 4, 10_000
		var wg sync.WaitGroup
		for range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range each {
					c.inc()
				}
			}()
		}
		wg.Wait()
		if got := c.sum(); got != goroutines*each {
			t.Errorf("%d slots: sum = %d, want %d", slots, got, goroutines*each)
		}
	}
}
