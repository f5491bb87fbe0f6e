package redis

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go/internal/faultproxy"
	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
	"github.com/halilbulentorhon/invacache-go/internal/monotime"
	"github.com/halilbulentorhon/invacache-go/internal/redisserver"
)

// proof is one HandleAliveAt call: the send time it reported and when it
// arrived.
type proof struct{ sent, at time.Time }

// aliveAtRecorder is a recorder that also takes send-timed proofs.
type aliveAtRecorder struct {
	recorder
	pmu    sync.Mutex
	proofs []proof // guarded by pmu
}

func (r *aliveAtRecorder) HandleAliveAt(sent time.Time) {
	r.enter()
	defer r.exit()
	r.pmu.Lock()
	r.proofs = append(r.proofs, proof{sent: sent, at: time.Now()})
	r.pmu.Unlock()
}

func (r *aliveAtRecorder) proofsSince(t0 time.Time) []proof {
	r.pmu.Lock()
	defer r.pmu.Unlock()
	var ps []proof
	for _, p := range r.proofs {
		if !p.sent.Before(t0) {
			ps = append(ps, p)
		}
	}
	return ps
}

// On a lagging link a PONG arrives long after its PING: the proof must carry
// the PING's send time, so the engine does not count a late answer as fresh
// (found by `invacache chaos`: a slowed subscriber whose stale PONGs kept it
// serving while Redis had dropped it read values 1.8s stale with
// MaxStaleness 1s).
func TestPongProofCarriesPingSendTime(t *testing.T) {
	leakcheck.Check(t)
	srv := redisserver.StartT(t, redisserver.Options{})
	px := faultproxy.NewT(t, srv.Addr())
	d := newTestDriver(t, Config{Address: px.Addr(), Channel: testChannel(t), DialTimeout: time.Second})
	r := &aliveAtRecorder{}
	subscribe(t, d, r, 50*time.Millisecond)
	waitUp(t, &r.recorder, 1)
	if r.alive.Load() != 0 {
		t.Errorf("HandleAlive called %d times for a handler with HandleAliveAt, want 0", r.alive.Load())
	}

	// Every chunk Redis sends is delayed by lag: each PONG arrives at least
	// lag after its PING was sent.
	const lag = 300 * time.Millisecond
	px.SetLatency(0, lag)
	t0 := time.Now()
	waitFor(t, 10*time.Second, "proofs through the lagging link", func() bool { return len(r.proofsSince(t0)) >= 3 })
	for _, p := range r.proofsSince(t0) {
		if d := p.at.Sub(p.sent); d < lag {
			t.Errorf("HandleAliveAt(sent) arrived %v after sent through a link that delays every reply by %v: sent is not the PING's send time", d, lag)
		}
	}
}

// A step of the wall clock (NTP, a VM resume) must not touch liveness: the
// PING carries a monotonic send time and the dead-link check runs on the
// monotonic clock (issue 10 item 1: a step forward made every node declare
// its link dead at once; a step back aged every proof by the step).
func TestLivenessIgnoresWallClockSteps(t *testing.T) {
	for _, step := range []time.Duration{-time.Hour, time.Hour} {
		t.Run(step.String(), func(t *testing.T) {
			leakcheck.Check(t)
			srv := redisserver.StartT(t, redisserver.Options{})
			d := newTestDriver(t, Config{Address: srv.Addr(), Channel: testChannel(t)})
			var stepped atomic.Int64
			// Before the first Subscribe: no session reads it yet.
			d.hub.clock = monotime.Clock{WallFunc: func() time.Time {
				return time.Now().Add(time.Duration(stepped.Load())).Round(0)
			}}
			const ping = 20 * time.Millisecond
			r := &aliveAtRecorder{}
			subscribe(t, d, r, ping)
			waitUp(t, &r.recorder, 1)

			t0 := time.Now()
			stepped.Store(int64(step))
			// Proofs keep coming for longer than the dead-link timeout.
			waitFor(t, 10*time.Second, "a proof arriving a dead-link timeout after the step", func() bool {
				ps := r.proofsSince(time.Time{})
				return len(ps) > 0 && ps[len(ps)-1].at.Sub(t0) > deadTimeout(ping)
			})
			if got := r.count("down"); got != 0 {
				t.Errorf("HandleLinkDown calls after the wall clock stepped by %v = %d (last err %v), want 0", step, got, r.lastDownErr())
			}
			ps := r.proofsSince(time.Time{})
			if last := ps[len(ps)-1]; last.sent.Before(t0) {
				t.Errorf("last proof's send time is %v before the step, though it arrived %v after it: the PING carried the stepped wall clock", t0.Sub(last.sent), last.at.Sub(t0))
			}
		})
	}
}
