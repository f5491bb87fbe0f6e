package main

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/halilbulentorhon/invacache-go/internal/wire"
	"github.com/halilbulentorhon/invacache-go/invalidation"
)

// tap wraps a node's driver to observe what the library does without
// touching it: messages the node published, messages it received from peers,
// and the moment its cache finished dropping a key (the engine applies an
// invalidation synchronously inside HandleMessage, so when the wrapped
// handler returns the key is gone from that node).
type tap struct {
	invalidation.Driver
	onDropped func(keys []string, at time.Time) // called per received peer message, after the drop

	self     atomic.Uint64 // this node's origin id, learned from its first publish
	sent     atomic.Uint64 // messages published
	received atomic.Uint64 // peer messages received (own echoes excluded)
	bad      atomic.Uint64 // payloads the codec rejected
	linkUps  atomic.Uint64
	up       atomic.Bool

	upOnce sync.Once
	upCh   chan struct{} // closed at the first link up
}

func newTap(d invalidation.Driver, onDropped func([]string, time.Time)) *tap {
	return &tap{Driver: d, onDropped: onDropped, upCh: make(chan struct{})}
}

// ConnectTimeout forwards the wrapped driver's value, so NewCache waits for
// the link as long as it would without the tap.
func (t *tap) ConnectTimeout() time.Duration {
	if ct, ok := t.Driver.(invalidation.ConnectTimeouter); ok {
		return ct.ConnectTimeout()
	}
	return 0
}

func (t *tap) Publish(ctx context.Context, payloads [][]byte) error {
	if t.self.Load() == 0 && len(payloads) > 0 {
		// Learn the origin before publishing: the echo may come back
		// before Publish returns.
		if m, err := wire.Decode(payloads[0]); err == nil && !m.Raw {
			t.self.Store(m.Origin)
		}
	}
	err := t.Driver.Publish(ctx, payloads)
	if err == nil {
		t.sent.Add(uint64(len(payloads)))
	}
	return err
}

func (t *tap) Subscribe(h invalidation.Handler, opts invalidation.SubscribeOptions) (invalidation.Subscription, error) {
	return t.Driver.Subscribe(&tapHandler{h: h, t: t}, opts)
}

// waitUp waits for the first link up.
func (t *tap) waitUp(ctx context.Context) error {
	select {
	case <-t.upCh:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type tapHandler struct {
	h invalidation.Handler
	t *tap
}

func (th *tapHandler) HandleMessage(payload []byte) {
	th.h.HandleMessage(payload)
	th.t.observe(payload)
}

// HandleLogMessage forwards a logged payload with its position (the engine's
// replay cursor) and observes it like HandleMessage.
func (th *tapHandler) HandleLogMessage(pos invalidation.LogPos, payload []byte) {
	th.h.HandleLogMessage(pos, payload)
	th.t.observe(payload)
}

// LogHead forwards to the wrapped driver's replay log, so the engine catches
// up through the tap as it would without it.
func (t *tap) LogHead(ctx context.Context) (invalidation.LogPos, error) {
	r, ok := t.Driver.(invalidation.Replayer)
	if !ok {
		return invalidation.LogPos{}, invalidation.ErrReplayDisabled
	}
	return r.LogHead(ctx)
}

// Replay forwards to the wrapped driver's replay log and observes each
// replayed payload after the engine applied it, like a received message.
func (t *tap) Replay(ctx context.Context, after invalidation.LogPos, fn func(invalidation.LogPos, []byte) error) (invalidation.LogPos, error) {
	r, ok := t.Driver.(invalidation.Replayer)
	if !ok {
		return after, invalidation.ErrReplayDisabled
	}
	return r.Replay(ctx, after, func(pos invalidation.LogPos, payload []byte) error {
		err := fn(pos, payload)
		if err == nil {
			t.observe(payload)
		}
		return err
	})
}

// observe counts a payload the node received (or replayed) and reports the
// keys its cache has just dropped.
func (t *tap) observe(payload []byte) {
	at := time.Now()
	m, err := wire.Decode(payload)
	if err != nil {
		t.bad.Add(1)
		return
	}
	if !m.Raw && m.Origin == t.self.Load() {
		return // the node's own echo, which the engine ignores
	}
	t.received.Add(1)
	if t.onDropped == nil {
		return
	}
	for _, op := range m.Ops {
		if len(op.Keys) > 0 {
			t.onDropped(op.Keys, at)
		}
	}
}

func (th *tapHandler) HandleLinkUp() {
	th.t.linkUps.Add(1)
	th.t.up.Store(true)
	th.t.upOnce.Do(func() { close(th.t.upCh) })
	th.h.HandleLinkUp()
}

func (th *tapHandler) HandleLinkDown(err error) {
	th.t.up.Store(false)
	th.h.HandleLinkDown(err)
}

var _ invalidation.ReachHandler = (*tapHandler)(nil)

// HandleUnreachable and HandleReachable forward the driver's outage
// reports, so a tapped cache keeps its OutageStaleness.
func (th *tapHandler) HandleUnreachable(err error) {
	if rh, ok := th.h.(invalidation.ReachHandler); ok {
		rh.HandleUnreachable(err)
	}
}

func (th *tapHandler) HandleReachable() {
	if rh, ok := th.h.(invalidation.ReachHandler); ok {
		rh.HandleReachable()
	}
}

func (th *tapHandler) HandleAlive() { th.h.HandleAlive() }

// HandleAliveAt forwards the driver's timed proof of life, so the engine
// ages it from the PING's send time, not from the PONG's arrival.
func (th *tapHandler) HandleAliveAt(sent time.Time) { th.h.HandleAliveAt(sent) }
