//go:build race

package store

import (
	"runtime"
	"sync/atomic"
	"unsafe"
)

// stripedCounter, under the race detector, is striped by the caller's
// stack address and incremented atomically: the race detector cannot see
// that a goroutine pinned to its P owns that P's slot, which the counter of
// normal builds (counter.go) relies on.
type stripedCounter struct {
	stripes []paddedCounter
	mask    uint64
}

type paddedCounter struct {
	n atomic.Uint64
	_ [120]byte // two cache lines: adjacent-line prefetch would share one
}

func newStripedCounter() stripedCounter {
	n := 64
	for n < 4*runtime.GOMAXPROCS(0) {
		n <<= 1
	}
	return stripedCounter{stripes: make([]paddedCounter, n), mask: uint64(n - 1)}
}

// inc picks the stripe by the caller's stack address: a goroutine keeps its
// stripe, and goroutines have distinct stacks.
func (c *stripedCounter) inc() {
	var x byte
	h := uint64(uintptr(unsafe.Pointer(&x)) >> 11)
	h ^= h >> 17
	h *= 0x9E3779B97F4A7C15
	c.stripes[(h>>32)&c.mask].n.Add(1)
}

func (c *stripedCounter) sum() uint64 {
	var n uint64
	for i := range c.stripes {
		n += c.stripes[i].n.Load()
	}
	return n
}
