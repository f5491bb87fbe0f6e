package engine_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/halilbulentorhon/invacache-go/internal/engine"
	"github.com/halilbulentorhon/invacache-go/internal/wire"
	"github.com/halilbulentorhon/invacache-go/invalidation"
)

// scriptDriver is a driver whose subscription the test drives by hand: the
// test goroutine calls the engine's Handler (serialized, as a driver would)
// and scripts what the replay log answers.
type scriptDriver struct {
	mu        sync.Mutex
	h         invalidation.Handler
	head      invalidation.LogPos
	headErr   error
	entries   []scriptEntry // what Replay passes to fn, in order
	replayErr error         // what Replay returns after the entries
	// gen, when set, replaces entries: it calls fn itself.
	gen     func(after invalidation.LogPos, fn func(invalidation.LogPos, []byte) error) error
	replays []invalidation.LogPos // the `after` of every Replay call
	heads   int                   // LogHead calls
	// entered and release, when set, make Replay report its start and
	// wait before playing.
	entered, release chan struct{}
}

type scriptEntry struct {
	pos     invalidation.LogPos
	payload []byte
}

var (
	_ invalidation.Driver   = (*scriptDriver)(nil)
	_ invalidation.Replayer = (*scriptDriver)(nil)
)

func (d *scriptDriver) Publish(context.Context, [][]byte) error { return nil }
func (d *scriptDriver) Close() error                            { return nil }

func (d *scriptDriver) Subscribe(h invalidation.Handler, _ invalidation.SubscribeOptions) (invalidation.Subscription, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.h = h
	return nopSub{}, nil
}

type nopSub struct{}

func (nopSub) Close() error { return nil }

func (d *scriptDriver) LogHead(context.Context) (invalidation.LogPos, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.heads++
	return d.head, d.headErr
}

func (d *scriptDriver) Replay(ctx context.Context, after invalidation.LogPos, fn func(invalidation.LogPos, []byte) error) (invalidation.LogPos, error) {
	d.mu.Lock()
	d.replays = append(d.replays, after)
	entries, rerr, gen, entered, release := d.entries, d.replayErr, d.gen, d.entered, d.release
	d.mu.Unlock()
	if entered != nil {
		entered <- struct{}{}
		<-release
	}
	if gen != nil {
		return after, gen(after, fn)
	}
	last := after
	for _, en := range entries {
		if err := fn(en.pos, en.payload); err != nil {
			return last, fmt.Errorf("script: replay stopped at %s: %w", en.pos, err)
		}
		last = en.pos
	}
	return last, rerr
}

func (d *scriptDriver) handler() invalidation.Handler {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.h
}

func (d *scriptDriver) replayCalls() []invalidation.LogPos {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]invalidation.LogPos(nil), d.replays...)
}

// set changes the script under the lock.
func (d *scriptDriver) set(f func(d *scriptDriver)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	f(d)
}

// scripted starts an engine (GapStrategy clear unless cfg says otherwise)
// on a scriptDriver whose log head is head, and delivers its first link-up.
func scripted(t testing.TB, cfg engine.Config, head invalidation.LogPos, tg engine.Target) (*engine.Engine, *scriptDriver) {
	t.Helper()
	d := &scriptDriver{head: head}
	cfg.Driver = d
	e, err := engine.New(cfg, tg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	d.handler().HandleLinkUp()
	return e, d
}

// pos is a position in epoch "E1" unless an epoch is given.
func pos(ms uint64, epoch ...string) invalidation.LogPos {
	p := invalidation.LogPos{Epoch: "E1", ID: invalidation.LogID{Ms: ms}}
	if len(epoch) > 0 {
		p.Epoch = epoch[0]
	}
	return p
}

// env is one envelope from origin with sequence seq invalidating keys.
func env(origin, seq uint64, keys ...string) []byte {
	ps, _, _ := wire.AppendBatches(nil, nil, origin, seq, false, keys, 1<<20)
	return ps[0]
}

// clearsBy returns the engine's clears for reason.
func clearsBy(e *engine.Engine, reason string) uint64 { return e.Stats().ClearsByReason[reason] }

// wantClears checks ClearsByReason against want (absent reasons are 0).
func wantClears(t testing.TB, e *engine.Engine, want map[string]uint64) {
	t.Helper()
	got := e.Stats().ClearsByReason
	for _, r := range engine.ClearReasons() {
		if got[r] != want[r] {
			t.Errorf("ClearsByReason[%s] = %d, want %d (all: %v)", r, got[r], want[r], got)
		}
	}
}
