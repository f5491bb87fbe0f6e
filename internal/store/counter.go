//go:build !race

package store

import (
	"runtime"
	"sync/atomic"
	_ "unsafe" // go:linkname
)

// procPin pins the calling goroutine to its P (no preemption, no migration)
// and returns the P's id; procUnpin releases it. The runtime keeps both for
// linkname users (go.dev/issue/67401), as sync.Pool uses them internally.
//
//go:linkname procPin runtime.procPin
func procPin() int

//go:linkname procUnpin runtime.procUnpin
func procUnpin()

// stripedCounter is a counter with one slot per P. A goroutine pinned to its
// P is the only one running there, so it owns the P's slot and increments
// it with a plain add: a hit costs no atomic read-modify-write (which would
// drain the core's store buffer on every Get). Slots are read with atomic
// loads; a word-sized aligned write is never torn. Ps beyond the slots
// (GOMAXPROCS raised after New) count in over, atomically.
type stripedCounter struct {
	slots []paddedSlot
	over  atomic.Uint64
}

type paddedSlot struct {
	n uint64    // written only by the goroutine pinned to this slot's P
	_ [120]byte // two cache lines: adjacent-line prefetch would share one
}

func newStripedCounter() stripedCounter {
	return stripedCounter{slots: make([]paddedSlot, max(runtime.GOMAXPROCS(0), runtime.NumCPU()))}
}

func (c *stripedCounter) inc() {
	if p := procPin(); p < len(c.slots) {
		c.slots[p].n++
		procUnpin()
		return
	}
	procUnpin()
	c.over.Add(1)
}

func (c *stripedCounter) sum() uint64 {
	n := c.over.Load()
	for i := range c.slots {
		n += atomic.LoadUint64(&c.slots[i].n)
	}
	return n
}
