package redis

import (
	"sync"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go/internal/faultproxy"
	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
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
