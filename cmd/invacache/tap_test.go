package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go/invalidation"
	"github.com/halilbulentorhon/invacache-go/invalidation/drivers/memory"
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

// The tap forwards the wrapped driver's replay log, so a node behind it
// catches up as it would without it, and observes replayed payloads; over a
// driver without a log it reports the log disabled (the node clears).
func TestTapForwardsReplay(t *testing.T) {
	bus := memory.NewBus()
	defer bus.Close()
	conn := bus.Connect()
	var dropped []string
	tp := newTap(conn, func(keys []string, _ time.Time) { dropped = append(dropped, keys...) })
	ctx := context.Background()
	start, err := tp.LogHead(ctx)
	if err != nil {
		t.Fatalf("LogHead through the tap: %v", err)
	}
	if err := conn.Publish(ctx, [][]byte{[]byte("k1"), []byte("k2")}); err != nil {
		t.Fatal(err)
	}
	var replayed int
	if _, err := tp.Replay(ctx, start, func(invalidation.LogPos, []byte) error { replayed++; return nil }); err != nil {
		t.Fatalf("Replay through the tap: %v", err)
	}
	if replayed != 2 || len(dropped) != 2 || tp.received.Load() != 2 {
		t.Errorf("replayed/dropped/received = %d/%v/%d, want 2/[k1 k2]/2", replayed, dropped, tp.received.Load())
	}
	plain := newTap(struct{ invalidation.Driver }{conn}, nil)
	if _, err := plain.LogHead(ctx); !errors.Is(err, invalidation.ErrReplayDisabled) {
		t.Errorf("LogHead through a tap over a driver without a log = %v, want ErrReplayDisabled", err)
	}
	if _, err := plain.Replay(ctx, start, nil); !errors.Is(err, invalidation.ErrReplayDisabled) {
		t.Errorf("Replay through a tap over a driver without a log = %v, want ErrReplayDisabled", err)
	}
}
