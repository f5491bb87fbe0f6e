package redis

import (
	"context"
	"fmt"
	"github.com/halilbulentorhon/invacache-go/internal/poll"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go/internal/redisserver"
	"github.com/halilbulentorhon/invacache-go/invalidation"
)

// recorder is a Handler that records what it observes.
type recorder struct {
	mu       sync.Mutex
	msgs     []string // guarded by mu
	events   []string // guarded by mu: "up", "down", in order
	downErrs []error  // guarded by mu

	alive   atomic.Int64
	slow    atomic.Int64 // nanoseconds HandleMessage sleeps (slow-subscriber tests)
	calling atomic.Int32 // concurrent calls in flight; must stay ≤ 1
	overlap atomic.Bool
}

func (r *recorder) enter() {
	if r.calling.Add(1) > 1 {
		r.overlap.Store(true)
	}
}
func (r *recorder) exit() { r.calling.Add(-1) }

func (r *recorder) HandleMessage(p []byte) {
	r.enter()
	defer r.exit()
	if d := r.slow.Load(); d > 0 {
		time.Sleep(time.Duration(d))
	}
	r.mu.Lock()
	r.msgs = append(r.msgs, string(p))
	r.mu.Unlock()
}

// HandleLogMessage records a logged payload like HandleMessage.
func (r *recorder) HandleLogMessage(_ invalidation.LogPos, p []byte) { r.HandleMessage(p) }

func (r *recorder) HandleLinkUp() {
	r.enter()
	defer r.exit()
	r.mu.Lock()
	r.events = append(r.events, "up")
	r.mu.Unlock()
}

func (r *recorder) HandleLinkDown(err error) {
	r.enter()
	defer r.exit()
	r.mu.Lock()
	r.events = append(r.events, "down")
	r.downErrs = append(r.downErrs, err)
	r.mu.Unlock()
}

func (r *recorder) HandleAlive() {
	r.enter()
	defer r.exit()
	r.alive.Add(1)
}

// HandleAliveAt counts like HandleAlive; aliveAtRecorder keeps the times.
func (r *recorder) HandleAliveAt(time.Time) { r.HandleAlive() }

func (r *recorder) count(ev string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e == ev {
			n++
		}
	}
	return n
}

// lastEvent is "up", "down" or "" before any.
func (r *recorder) lastEvent() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.events) == 0 {
		return ""
	}
	return r.events[len(r.events)-1]
}

func (r *recorder) messages() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.msgs...)
}

func (r *recorder) has(msg string) bool {
	for _, m := range r.messages() {
		if m == msg {
			return true
		}
	}
	return false
}

func (r *recorder) lastDownErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.downErrs) == 0 {
		return nil
	}
	return r.downErrs[len(r.downErrs)-1]
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, within, what, cond)
}

// waitUp waits until the recorder's latest link event is "up" and at least n
// link-ups happened.
func waitUp(t testing.TB, r *recorder, n int) {
	t.Helper()
	waitFor(t, 10*time.Second, fmt.Sprintf("link up #%d", n), func() bool {
		return r.count("up") >= n && r.lastEvent() == "up"
	})
}

var channelSeq atomic.Int64

// testChannel returns a channel name unique in the process.
func testChannel(t testing.TB) string {
	return fmt.Sprintf("test:%s:%d", strings.ReplaceAll(t.Name(), "/", "_"), channelSeq.Add(1))
}

// newTestDriver builds a driver for srv on a fresh channel, closed in Cleanup.
func newTestDriver(t testing.TB, cfg Config) *Driver {
	t.Helper()
	d, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func subscribe(t testing.TB, d *Driver, h invalidation.Handler, ping time.Duration) invalidation.Subscription {
	t.Helper()
	s, err := d.Subscribe(h, invalidation.SubscribeOptions{PingInterval: ping})
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func publish(t testing.TB, d *Driver, payloads ...string) {
	t.Helper()
	ps := make([][]byte, len(payloads))
	for i, p := range payloads {
		ps[i] = []byte(p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.Publish(ctx, ps); err != nil {
		t.Fatalf("Publish: %v", err)
	}
}

// pubsubClients counts the server's connections in Pub/Sub mode.
func pubsubClients(t testing.TB, srv *redisserver.Server) int {
	t.Helper()
	out, err := srv.Do("CLIENT", "LIST", "TYPE", "pubsub")
	if err != nil {
		t.Fatalf("CLIENT LIST: %v", err)
	}
	return strings.Count(out, "id=")
}

// roundTrip publishes msg through d and waits until r received it.
func roundTrip(t testing.TB, d *Driver, r *recorder, msg string) {
	t.Helper()
	publish(t, d, msg)
	waitFor(t, 5*time.Second, "message "+msg, func() bool { return r.has(msg) })
}

// linked starts a server and a driver for it on a fresh channel (cfg's
// Address and Channel are filled in), subscribes a recorder and waits for
// the link.
func linked(t testing.TB, opts redisserver.Options, cfg Config, ping time.Duration) (*redisserver.Server, *Driver, *recorder) {
	t.Helper()
	srv := redisserver.StartT(t, opts)
	cfg.Address, cfg.Channel = srv.Addr(), testChannel(t)
	d := newTestDriver(t, cfg)
	r := &recorder{}
	subscribe(t, d, r, ping)
	waitUp(t, r, 1)
	return srv, d, r
}

// publishFails checks that Publish returns an error (not hangs) while the
// server cannot take it.
func publishFails(t testing.TB, d *Driver) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := d.Publish(ctx, [][]byte{[]byte("lost")}); err == nil {
		t.Error("Publish: err = nil, want an error")
	}
}
