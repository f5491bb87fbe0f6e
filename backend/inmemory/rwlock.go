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
// pending writer stops new readers, so
// writers are not starved. It is built on sync/atomic only, which the race
// detector understands as synchronization.
type rwLock struct {
	// state: readers holding or trying to take the lock in the low bits,
	// rwWriter while a writer holds or waits for the lock.
	state atomic.Int32
}

const (
	rwWriter = 1 << 30
	rwSpins  = 64 // busy polls before yielding the processor
	rwYields = 16 // runtime.Gosched calls before sleeping
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
		l.state.Add(-1)
		for i := 0; l.state.Load()&rwWriter != 0; i++ {
			backoff(i)
		}
	}
}

func (l *rwLock) RUnlock() { l.state.Add(-1) }

// TryRLock is for tests: it reports whether a read lock was taken.
func (l *rwLock) TryRLock() bool {
	if l.state.Add(1)&rwWriter == 0 {
		return true
	}
	l.state.Add(-1)
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
	for i := 0; l.state.Load() != rwWriter; i++ {
		backoff(i)
	}
}

func (l *rwLock) Unlock() { l.state.Add(-rwWriter) }
