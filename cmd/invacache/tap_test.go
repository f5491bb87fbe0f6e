package main

import (
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go/invalidation"
)

type aliveRecorder struct {
	alive   int
	aliveAt []time.Time
}

func (r *aliveRecorder) HandleMessage([]byte)                         {}
func (r *aliveRecorder) HandleLogMessage(invalidation.LogPos, []byte) {}
func (r *aliveRecorder) HandleLinkUp()                                {}
func (r *aliveRecorder) HandleLinkDown(error)                         {}
func (r *aliveRecorder) HandleAlive()                                 { r.alive++ }
func (r *aliveRecorder) HandleAliveAt(sent time.Time)                 { r.aliveAt = append(r.aliveAt, sent) }

// The tap must pass the PING's send time through: an engine that saw only
// HandleAlive would age the proof from the PONG's arrival, which on a
// lagging link overstates freshness.
func TestTapForwardsAliveAt(t *testing.T) {
	rec := &aliveRecorder{}
	th := &tapHandler{h: rec, t: &tap{}}
	sent := time.Now().Add(-time.Second)
	th.HandleAliveAt(sent)
	if len(rec.aliveAt) != 1 || !rec.aliveAt[0].Equal(sent) || rec.alive != 0 {
		t.Errorf("HandleAliveAt forwarded as aliveAt=%v alive=%d, want [%v] and 0", rec.aliveAt, rec.alive, sent)
	}
}
