package inmemory

import (
	"runtime"
	"sync/atomic"
	"time"
)

// rwLock is a reader-writer lock for critical sections of a few hundred
// nanoseconds. sync.RWMutex parks a reader that meets a writer at once; with
// a 75/25 read/write mix on a hot shard that put readers to sleep on every
// collision and halved throughput (bench/STORE_RESULTS.md). rwLock spins
// briefly, then yields to other goroutines, then sleeps with growing pauses
// (so a holder whose thread the OS descheduled gets the CPU back) instead. A
// pending writer stops new readers, so writers are not starved. It is built on sync/atomic only, which the race
// detector understands as synchronization.
//
// The same atomic word counts completed counted reads (RUnlockCount) in its
// high bits, so a Get hit costs two atomic operations, not three: the hit
// counter rides on the unlock.
type rwLock struct {
	// state: bits 0-20 readers holding or trying to take the lock; rwWriter
	// while a writer holds or waits for the lock; bits 22-63 a wrapping
	// count of RUnlockCount calls.
	state atomic.Uint64
}

const (
	rwReaders  = 1<<21 - 1
	rwWriter   = 1 << 21
	rwCountOne = 1 << 22
	rwSpins    = 64 // busy polls before yielding the processor
	rwYields   = 16 // runtime.Gosched calls before sleeping
)

// backoff waits a little before the i-th retry.
func backoff(i int) {
	switch {
	case i < rwSpins:
	case i < rwSpins+rwYields:
		runtime.Gosched()
	default:
		time.Sleep(time.Microsecond << min(i-rwSpins-rwYields, 10))
	}
}

func (l *rwLock) RLock() {
	for {
		if l.state.Add(1)&rwWriter == 0 {
			return
		}
		l.state.Add(^uint64(0))
		for i := 0; l.state.Load()&rwWriter != 0; i++ {
			backoff(i)
		}
	}
}

func (l *rwLock) RUnlock() { l.state.Add(^uint64(0)) }

// RUnlockCount releases a read lock and adds one to the count.
func (l *rwLock) RUnlockCount() { l.state.Add(rwCountOne - 1) }

// count returns the wrapping (42-bit) count of RUnlockCount calls.
func (l *rwLock) count() uint64 { return l.state.Load() / rwCountOne }

// TryRLock is for tests: it reports whether a read lock was taken.
func (l *rwLock) TryRLock() bool {
	if l.state.Add(1)&rwWriter == 0 {
		return true
	}
	l.state.Add(^uint64(0))
	return false
}

func (l *rwLock) Lock() {
	// Claim the writer bit, then wait for readers already inside to leave.
	for i := 0; ; i++ {
		s := l.state.Load()
		if s&rwWriter == 0 && l.state.CompareAndSwap(s, s|rwWriter) {
			break
		}
		backoff(i)
	}
	for i := 0; l.state.Load()&(rwReaders|rwWriter) != rwWriter; i++ {
		backoff(i)
	}
}

func (l *rwLock) Unlock() { l.state.Add(^uint64(rwWriter - 1)) }
