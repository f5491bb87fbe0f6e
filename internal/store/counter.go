package store

import (
	"runtime"
	"sync/atomic"
)

// stripedCounter is a counter split over padded stripes, picked by the
// caller's stack address (Store.stripe): a goroutine keeps its stripe while
// its stack stays put, and goroutines have distinct stacks, so parallel
// readers rarely write one cache line. Each stripe is a plain atomic (no
// runtime internals).
type stripedCounter struct {
	stripes []paddedCounter
	mask    uint64
}

type paddedCounter struct {
	n atomic.Uint64
	_ [120]byte // two cache lines: adjacent-line prefetch would share one
}

// stripeMul spreads stack addresses over the stripes (a Fibonacci hash).
const stripeMul = 0x9E3779B97F4A7C15

func newStripedCounter() stripedCounter {
	n := 64
	for n < 4*runtime.GOMAXPROCS(0) {
		n <<= 1
	}
	return stripedCounter{stripes: make([]paddedCounter, n), mask: uint64(n - 1)}
}

func (c *stripedCounter) sum() uint64 {
	var n uint64
	for i := range c.stripes {
		n += c.stripes[i].n.Load()
	}
	return n
}
