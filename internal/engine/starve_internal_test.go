package engine

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go/internal/monotime"
)

// A starved process runs the expiry timer late (found by `invacache chaos`:
// with the whole process stalled for 1.7s, reads that ran right after the
// stall, before the timer's callback, served values 2.1s stale with
// MaxStaleness 1s). Serving must compare the deadline with the clock itself.
// The test starves the timer deterministically: its callback needs liveMu.
func TestServingEndsAtDeadlineWhenTimerIsLate(t *testing.T) {
	const maxStale = 100 * time.Millisecond
	e, h, tg := newLinkedEngine(t, maxStale)
	proof := e.lastAlive.Load()
	since := func() time.Duration { return time.Duration(monotime.Now() - proof) }

	e.liveMu.Lock() // the expiry callback cannot run: a starved timer
	for since() <= maxStale {
		time.Sleep(5 * time.Millisecond)
	}
	got := e.Serving()
	e.liveMu.Unlock()
	if got {
		t.Errorf("Serving() = true %v after the last proof with MaxStaleness %v while the timer was late, want false", since().Round(time.Millisecond), maxStale)
	}

	// The lapse counts as a gap whichever runs first, the late timer or
	// the next proof: the cache is cleared before serving resumes.
	clears := tg.clears.Load()
	h.HandleAlive()
	if !e.Serving() {
		t.Errorf("Serving() = false after a fresh proof, want true")
	}
	if got := tg.clears.Load() - clears; got != 1 {
		t.Errorf("InvalidateAll calls after the lapse = %d, want 1", got)
	}
}

type clearCounter struct{ clears atomic.Int32 }

func (*clearCounter) InvalidateKeys([]string) {}
func (c *clearCounter) InvalidateAll()        { c.clears.Add(1) }
