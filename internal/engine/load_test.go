package engine_test

import (
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go/internal/engine"
	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
	"github.com/halilbulentorhon/invacache-go/invalidation/drivers/memory"
)

// stampTarget records, per key, the value of a shared tick when the key was
// last invalidated. A writer takes a tick before enqueueing a key, so a key
// whose last stamp is at or after its last enqueue tick was delivered after
// the last enqueue began: what a cache that reloads on invalidation needs.
type stampTarget struct {
	tick    *atomic.Uint64
	stamps  []atomic.Uint64 // by key index
	clears  atomic.Uint64
	invalid atomic.Uint64 // keys not of the form k<index>
}

func (s *stampTarget) InvalidateKeys(keys []string) {
	now := s.tick.Load()
	for _, k := range keys {
		i, err := strconv.Atoi(k[1:])
		if err != nil || i < 0 || i >= len(s.stamps) {
			s.invalid.Add(1)
			continue
		}
		s.stamps[i].Store(now)
	}
}

func (s *stampTarget) InvalidateAll() { s.clears.Add(1) }

// runLoad broadcasts total random keys (of keySpace) from workers goroutines
// through an in-process bus to one receiver and checks that every key was
// delivered after its last enqueue. It returns the time from the first
// enqueue until the receiver applied everything.
func runLoad(tb testing.TB, total, workers, keySpace int) time.Duration {
	tb.Helper()
	bus := memory.NewBus()
	defer bus.Close()
	keys := make([]string, keySpace)
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(i)
	}
	var tick atomic.Uint64
	recv := &stampTarget{tick: &tick, stamps: make([]atomic.Uint64, keySpace)}
	rconn := bus.Connect()
	defer rconn.Close()
	receiver, err := engine.New(engine.Config{Driver: rconn}, recv)
	if err != nil {
		tb.Fatal(err)
	}
	defer receiver.Close()
	sender := newNode(tb, bus, engine.Config{})
	waitFor(tb, "receiver link", func() bool { return receiver.Stats().LinkUp })
	lastEnq := make([]atomic.Uint64, keySpace)

	start := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for range total / workers {
				i := r.IntN(keySpace)
				// Record the tick before the enqueue; racing writers of the
				// same key may store out of order, so keep the maximum.
				t := tick.Add(1)
				for {
					old := lastEnq[i].Load()
					if t <= old || lastEnq[i].CompareAndSwap(old, t) {
						break
					}
				}
				if err := sender.e.BroadcastDelete(keys[i]); err != nil {
					tb.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	flush(tb, sender.e)
	sent := sender.e.Stats().MessagesSent
	waitFor(tb, "receiver to apply every message", func() bool { return receiver.Stats().MessagesApplied >= sent })
	elapsed := time.Since(start)

	var missed, enqueued int
	for i := range lastEnq {
		last := lastEnq[i].Load()
		if last == 0 {
			continue
		}
		enqueued++
		if got := recv.stamps[i].Load(); got < last {
			if missed < 5 {
				tb.Errorf("key %s: last enqueued at tick %d, last delivered at tick %d", keys[i], last, got)
			}
			missed++
		}
	}
	s, rs := sender.e.Stats(), receiver.Stats()
	if missed > 0 || recv.invalid.Load() != 0 || rs.Gaps != 1 || rs.Malformed != 0 {
		tb.Errorf("%d of %d keys not delivered after their last enqueue; invalid keys %d, receiver gaps %d (want 1), malformed %d",
			missed, enqueued, recv.invalid.Load(), rs.Gaps, rs.Malformed)
	}
	if s.BroadcastsQueued != uint64(total/workers*workers) {
		tb.Errorf("BroadcastsQueued = %d, want %d", s.BroadcastsQueued, total/workers*workers)
	}
	tb.Logf("%d broadcasts from %d goroutines (%d distinct keys): %d keys in %d messages after coalescing, %v, %.0f broadcasts/s",
		s.BroadcastsQueued, workers, keySpace, s.KeysSent, s.MessagesSent, elapsed, float64(s.BroadcastsQueued)/elapsed.Seconds())
	return elapsed
}

// TestOutboxUnderLoad pushes 1M broadcasts (scaled down with -short and
// under the race detector) and checks none is lost.
func TestOutboxUnderLoad(t *testing.T) {
	leakcheck.Check(t)
	total := 1_000_000
	if testing.Short() || raceEnabled {
		total = 100_000
	}
	runLoad(t, total, 8, 100_000)
}

// BenchmarkOutbox measures end-to-end broadcasts/s (keys/s) through the
// outbox and the in-process bus: each iteration is 1M broadcasts of random
// keys (100k distinct) from 8 goroutines until the receiver applied them.
func BenchmarkOutbox(b *testing.B) {
	var total time.Duration
	n := 0
	for b.Loop() {
		total += runLoad(b, 1_000_000, 8, 100_000)
		n++
	}
	b.ReportMetric(float64(n)*1_000_000/total.Seconds(), "keys/s")
}
