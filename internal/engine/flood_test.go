package engine_test

import (
	"github.com/halilbulentorhon/invacache-go/invalidation"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go/internal/engine"
)

// cleanTarget is a target that reports nothing cached since its last clear.
type cleanTarget struct{ *target }

func (cleanTarget) Clean() bool { return true }

// A publisher that floods the channel with forged frames (an epoch of its
// own, an id that never moves, a malformed envelope inside: each one a gap,
// twice) is not amplified: the log reads that gap handling makes (catch-ups
// and head reads) stay within GapReadsPerSecond, whatever the flood's size,
// and on a cache with nothing cached since its last clear the repeated clears
// collapse. Before the budget, every frame cost two head reads and a replay.
func TestGarbageFloodIsNotAmplified(t *testing.T) {
	const frames = 5000
	tests := []struct {
		name  string
		clean bool
	}{
		{"cache refilled between frames", false},
		{"nothing cached since the last clear", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tg engine.Target = newTarget()
			if tt.clean {
				tg = cleanTarget{newTarget()}
			}
			e, d := scripted(t, engine.Config{}, pos(10), tg)
			h := d.handler()
			h.HandleLogMessage(pos(11), env(7, 1, "k"))
			start := time.Now()
			reads := func() int {
				d.mu.Lock()
				defer d.mu.Unlock()
				return d.heads + len(d.replays)
			}
			before := reads()
			for range frames {
				h.HandleLogMessage(pos(1, "zz"), []byte("\x00ivc1 zz"))
			}
			elapsed := time.Since(start)
			got := reads() - before
			// The budget: a full bucket, then GapReadsPerSecond a second.
			limit := engine.GapReadsPerSecond + int(elapsed.Seconds()*engine.GapReadsPerSecond) + 1
			if got > limit {
				t.Errorf("%d frames in %s cost %d log reads, want at most %d", frames, elapsed, got, limit)
			}
			st := e.Stats()
			if st.Malformed != frames {
				t.Errorf("Malformed = %d, want %d (every frame counted)", st.Malformed, frames)
			}
			if tt.clean {
				if st.ClearsOnGap > 1 || st.ClearsCollapsed < frames {
					t.Errorf("ClearsOnGap = %d, ClearsCollapsed = %d; want the clears after the first collapsed", st.ClearsOnGap, st.ClearsCollapsed)
				}
			} else if st.ClearsCollapsed != 0 {
				t.Errorf("ClearsCollapsed = %d on a cache that is never clean, want 0", st.ClearsCollapsed)
			}
		})
	}
}

// A raw key (no magic: an operator's redis-cli PUBLISH) seen live means
// someone publishes outside the log, so the next gap cannot trust a
// catch-up and clears (unlogged_peer), as after a peer's unlogged envelope.
// A raw key read from the log (a logged operator path) leaves no mark.
func TestRawKeyLiveHolesTheLog(t *testing.T) {
	tests := []struct {
		name    string
		deliver func(h interface {
			HandleMessage([]byte)
			HandleLogMessage(invalidation.LogPos, []byte)
		})
		want map[string]uint64
	}{
		{"raw key live", func(h interface {
			HandleMessage([]byte)
			HandleLogMessage(invalidation.LogPos, []byte)
		}) {
			h.HandleMessage([]byte("user:1"))
		}, map[string]uint64{engine.ClearFirstSubscribe: 1, engine.ClearUnloggedPeer: 1}},
		{"raw key from the log", func(h interface {
			HandleMessage([]byte)
			HandleLogMessage(invalidation.LogPos, []byte)
		}) {
			h.HandleLogMessage(pos(11), []byte("user:1"))
		}, map[string]uint64{engine.ClearFirstSubscribe: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := newTarget()
			e, d := scripted(t, engine.Config{}, pos(10), tg)
			h := d.handler()
			tt.deliver(h)
			if tg.count("user:1") != 1 {
				t.Fatalf("user:1 invalidated %d times, want 1", tg.count("user:1"))
			}
			h.HandleLinkDown(nil)
			h.HandleLinkUp()
			wantClears(t, e, tt.want)
		})
	}
}
