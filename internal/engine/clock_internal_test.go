package engine

import (
	"sync"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go/internal/monotime"
)

// steppedClock is a fake clock whose wall reading can jump (an NTP step, a
// VM resume) while its monotonic reading only moves when the test advances
// it.
type steppedClock struct {
	mu   sync.Mutex
	mono int64         // monotonic nanoseconds
	step time.Duration // wall minus monotonic, beyond their common origin
}

func newSteppedClock() *steppedClock { return &steppedClock{mono: int64(time.Second)} }

func (c *steppedClock) clock() monotime.Clock {
	return monotime.Clock{
		MonoFunc: func() int64 { c.mu.Lock(); defer c.mu.Unlock(); return c.mono },
		// A wall reading without a monotonic one, as after a step.
		WallFunc: func() time.Time {
			c.mu.Lock()
			defer c.mu.Unlock()
			return monotime.Time(c.mono).Add(c.step).Round(0)
		},
	}
}

func (c *steppedClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mono += int64(d)
}

func (c *steppedClock) stepWall(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.step += d
}

// sendTime is what a driver records when it starts a round trip: a
// time.Now() reading, which carries the monotonic clock.
func (c *steppedClock) sendTime() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return monotime.Time(c.mono)
}

// A step of the wall clock must neither stretch nor cut the staleness
// bound: every liveness decision runs on the monotonic clock (issue 10
// item 1: after a step back of D every proof stretched the serving deadline
// by D, SinceAlive=-59m; a step forward made every node declare its link
// dead at once).
func TestLivenessIgnoresWallClockSteps(t *testing.T) {
	const maxStale = time.Second
	for _, step := range []time.Duration{-time.Hour, time.Hour} {
		t.Run(step.String(), func(t *testing.T) {
			clk := newSteppedClock()
			tg := &clearCounter{}
			e, err := New(Config{Driver: nopDriver{}, MaxStaleness: maxStale}, tg)
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			e.clock = clk.clock() // before the first handler call
			h := handler{e}
			h.HandleLinkUp()
			clears := tg.clears.Load()

			clk.stepWall(step)
			// The node keeps proving its link every MaxStaleness/4 for
			// two bounds: it must serve throughout, with no clear.
			for i := 0; i < 8; i++ {
				clk.advance(maxStale / 4)
				h.HandleAliveAt(clk.sendTime())
				if !e.Serving() {
					t.Fatalf("Serving() = false right after a fresh proof, wall stepped by %v", step)
				}
			}
			if got := tg.clears.Load() - clears; got != 0 {
				t.Errorf("InvalidateAll calls while proofs kept coming = %d, want 0 (wall stepped by %v)", got, step)
			}
			st := e.Stats()
			if st.SinceAlive != 0 {
				t.Errorf("Stats().SinceAlive = %v right after a proof, want 0", st.SinceAlive)
			}

			// Then the proofs stop: the node serves for MaxStaleness more,
			// measured on the monotonic clock, and no longer.
			clk.advance(maxStale / 2)
			if !e.Serving() {
				t.Errorf("Serving() = false %v after the last proof with MaxStaleness %v", maxStale/2, maxStale)
			}
			if got := e.Stats().SinceAlive; got != maxStale/2 {
				t.Errorf("Stats().SinceAlive = %v, want %v (the monotonic time since the proof)", got, maxStale/2)
			}
			clk.advance(maxStale / 2)
			if e.Serving() {
				t.Errorf("Serving() = true %v after the last proof with MaxStaleness %v (wall stepped by %v)", maxStale, maxStale, step)
			}
			st = e.Stats()
			if want := clk.clock().Wall().Add(-maxStale); !st.LastAlive.Equal(want) {
				t.Errorf("Stats().LastAlive = %v, want the wall clock minus SinceAlive %v", st.LastAlive, want)
			}
		})
	}
}
