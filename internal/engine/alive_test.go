package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go/internal/engine"
	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
	"github.com/halilbulentorhon/invacache-go/invalidation"
)

// handDriver hands the engine's handler to the test, which plays the
// driver's role by calling it directly.
type handDriver struct{ h chan invalidation.Handler }

func (d *handDriver) Publish(context.Context, [][]byte) error { return nil }
func (d *handDriver) Close() error                            { return nil }
func (d *handDriver) Subscribe(h invalidation.Handler, _ invalidation.SubscribeOptions) (invalidation.Subscription, error) {
	d.h <- h
	return handSub{}, nil
}

type handSub struct{}

func (handSub) Close() error { return nil }

// A PONG that waited behind a backlog proves only what was published before
// its PING was sent: a proof older than MaxStaleness must not make a lapsed
// node serve again (found by `invacache chaos`: a slowed subscriber served
// values 1.8s stale with MaxStaleness 1s), and a proof counts from its send
// time.
func TestAliveAtCountsFromSendTime(t *testing.T) {
	leakcheck.Check(t)
	const maxStale = 100 * time.Millisecond
	d := &handDriver{h: make(chan invalidation.Handler, 1)}
	e, err := engine.New(engine.Config{Driver: d, MaxStaleness: maxStale}, newTarget())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	h := <-d.h
	h.HandleLinkUp()
	if !e.Serving() {
		t.Fatal("Serving() = false after HandleLinkUp, want true")
	}
	waitFor(t, "the staleness bound to lapse", func() bool { return !e.Serving() })

	before := e.Stats().LastAlive
	old := time.Now().Add(-2 * maxStale)
	h.HandleAliveAt(old)
	if e.Serving() {
		t.Errorf("Serving() = true after a proof sent %v ago with MaxStaleness %v, want false", 2*maxStale, maxStale)
	}
	if got := e.Stats().LastAlive; !got.Equal(before) {
		t.Errorf("Stats().LastAlive = %v after an older proof, want %v (never backwards)", got, before)
	}

	// A proof sent half a bound ago serves for the other half only.
	sent := time.Now().Add(-maxStale / 2)
	h.HandleAliveAt(sent)
	// On a starved machine the check itself may run past the bound; only a
	// check made within it can tell.
	if serving, age := e.Serving(), time.Since(sent); !serving && age < maxStale {
		t.Errorf("Serving() = false %v after a proof's send time, want true within MaxStaleness %v", age, maxStale)
	}
	if got := e.Stats().LastAlive; !got.Equal(sent) {
		t.Errorf("Stats().LastAlive = %v, want the proof's send time %v", got, sent)
	}
	waitFor(t, "the bound to lapse after the proof", func() bool { return !e.Serving() })
	if since := time.Since(sent); since < maxStale {
		t.Errorf("stopped serving %v after the proof's send time, want at least MaxStaleness %v", since, maxStale)
	}
}
