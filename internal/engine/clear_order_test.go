package engine_test

import (
	"slices"
	"testing"

	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
)

// A key queued after the publisher took a clear is not covered by it (the
// clear may already be applied at peers): it goes out in a later message,
// after the clear. (Keys queued while the clear is still pending are covered:
// TestCoalescingGroupCommit.)
func TestKeyAfterTakenClearFollowsIt(t *testing.T) {
	leakcheck.Check(t)
	a, b, g := gatedPair(t)
	clearsBefore := b.t.clearCount() // b's own link-up

	g.hold()
	_ = a.e.BroadcastClear()
	<-g.entered // the publisher took the clear: it is in flight
	_ = a.e.BroadcastDelete("late", "late")
	g.open()
	flush(t, a.e)
	waitFor(t, "b to receive late", func() bool { return b.t.count("late") == 1 })

	b.t.mu.Lock()
	calls := slices.Clone(b.t.calls)
	b.t.mu.Unlock()
	want := [][]string{nil, {"late"}} // nil: InvalidateAll
	if got := calls[clearsBefore:]; !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("b's calls after its link-up = %q, want %q (nil = clear)", got, want)
	}
	if s := a.e.Stats(); s.BroadcastsQueued != 3 || s.KeysSent != 1 || s.ClearsSent != 1 || s.OutboxDepth != 0 {
		t.Errorf("stats queued/keys/clears/depth = %d/%d/%d/%d, want 3/1/1/0", s.BroadcastsQueued, s.KeysSent, s.ClearsSent, s.OutboxDepth)
	}
}
