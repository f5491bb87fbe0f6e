package engine

import (
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go/internal/monotime"
)

// Serving that finds the deadline passed before the timer ran must turn
// the flag MayServe reads off itself, as the timer would, and the lapse
// still counts as a gap.
func TestServingTurnsTheFlagOffWhenTheTimerIsLate(t *testing.T) {
	const maxStale = 100 * time.Millisecond
	e, h, tg := newLinkedEngine(t, maxStale)
	e.liveMu.Lock()
	e.timer.Stop() // a timer that has not run yet
	e.liveMu.Unlock()
	proof := e.lastAlive.Load()
	for time.Duration(monotime.Now()-proof) <= maxStale {
		time.Sleep(5 * time.Millisecond)
	}
	if !mayServe(e) {
		t.Fatal("MayServe() = false before anything ran the expiry; the test needs the late timer")
	}
	if e.Serving() {
		t.Errorf("Serving() = true past the deadline, want false")
	}
	if mayServe(e) {
		t.Errorf("MayServe() = true after Serving found the deadline passed, want false")
	}
	clears := tg.clears.Load()
	h.HandleAlive()
	if !mayServe(e) || !e.Serving() {
		t.Errorf("MayServe, Serving = %v, %v after a fresh proof, want true, true", mayServe(e), e.Serving())
	}
	if got := tg.clears.Load() - clears; got != 1 {
		t.Errorf("InvalidateAll calls after the lapse = %d, want 1", got)
	}
}

// newLinkedEngine is an engine with the bound maxStale on a driver that
// does nothing, just linked up (serving), closed at the end of the test.
func newLinkedEngine(t *testing.T, maxStale time.Duration) (*Engine, handler, *clearCounter) {
	t.Helper()
	tg := &clearCounter{}
	e, err := New(Config{Driver: nopDriver{}, MaxStaleness: maxStale}, tg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	h := handler{e}
	h.HandleLinkUp()
	if !e.Serving() || !mayServe(e) {
		t.Fatal("Serving, MayServe = false after HandleLinkUp, want true")
	}
	return e, h, tg
}

func mayServe(e *Engine) bool {
	_, ok := e.MayServe()
	return ok
}
