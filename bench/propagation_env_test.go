package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/redisserver"
	"github.com/halilbulentorhon/invacache-go/invalidation"
	redisdriver "github.com/halilbulentorhon/invacache-go/invalidation/drivers/redis"
)

// propEnv is a Redis deployment with two InvaCache nodes on it (a writer A
// and a peer B, each with its own connections, as two processes would have)
// and a raw go-redis publisher/subscriber pair for the baseline.
type propEnv struct {
	srv    *redisserver.Server // a server of the deployment (INFO)
	stop   func() error        // stops the deployment; nil when the caller owns it
	a, b   invacache.Cache[string]
	da, db *redisdriver.Driver

	// applied receives the time B's engine finished applying a message
	// (B's handler returned; the key is gone from B's store by then).
	applied chan time.Time
	// bLinkUps counts B's subscriptions: one more than 1 means B lost its
	// link (messages published meanwhile may be lost; B clears).
	bLinkUps atomic.Int64

	raw        goredis.UniversalClient
	rawSharded bool // SPUBLISH/SSUBSCRIBE instead of PUBLISH/SUBSCRIBE
	rawSub     *goredis.PubSub
	rawRecv    chan time.Time // latency channel: receive times
	rawCount   atomic.Int64   // throughput channel: messages received
	rawDone    chan struct{}
	rawLatCh   string
	rawCountCh string
}

const propChannel = "bench:invalidation"

// propSetup places an environment on a deployment.
type propSetup struct {
	srv  *redisserver.Server
	stop func() error // nil: the caller stops the deployment
	// a and b configure the drivers of A and B; their connection settings
	// must differ, or the two nodes would share connections.
	a, b redisdriver.Config
	// newRaw returns a new raw go-redis client on the same deployment.
	newRaw     func() goredis.UniversalClient
	rawLatCh   string
	rawCountCh string
	rawSharded bool
}

// newPropEnv starts a redis-server and the environment on it; without
// peer, B is not created (for the caller-cost measurement, where a peer in
// the same process would steal the CPU a remote peer would not).
func newPropEnv(tb testing.TB, peer bool) *propEnv {
	tb.Helper()
	srv, err := redisserver.Start(redisserver.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return newPropEnvOn(tb, peer, propSetup{
		srv: srv, stop: srv.Close,
		// Different PoolSize → different connection settings → A and B
		// do not share connections, like two processes.
		a: redisdriver.Config{Address: srv.Addr(), Channel: propChannel, PoolSize: 10},
		b: redisdriver.Config{Address: srv.Addr(), Channel: propChannel, PoolSize: 11},
		newRaw: func() goredis.UniversalClient {
			return goredis.NewClient(&goredis.Options{Addr: srv.Addr(), Protocol: 2})
		},
		rawLatCh: "bench:raw:lat", rawCountCh: "bench:raw:count",
	})
}

// newPropEnvOn builds the environment s describes.
func newPropEnvOn(tb testing.TB, peer bool, s propSetup) *propEnv {
	tb.Helper()
	e := &propEnv{srv: s.srv, stop: s.stop, applied: make(chan time.Time, 1024), rawRecv: make(chan time.Time, 16),
		rawDone: make(chan struct{}), rawLatCh: s.rawLatCh, rawCountCh: s.rawCountCh, rawSharded: s.rawSharded}
	var err error
	if e.da, err = redisdriver.New(s.a); err != nil {
		tb.Fatal(err)
	}
	if e.db, err = redisdriver.New(s.b); err != nil {
		tb.Fatal(err)
	}
	mk := func(d invalidation.Driver) invacache.Cache[string] {
		c, err := invacache.NewCache[string](config.InvaCacheConfig{
			Logger:  dbgLogger(),
			Backend: &config.BackendConfig{InMemory: &config.InMemoryConfig{Capacity: 1 << 20}},
			// The throughput runs queue up to 2M distinct keys at once: an
			// outbox bound below that would collapse them into one clear,
			// which is not the per-key delivery they measure.
			Invalidation: &config.InvalidationConfig{Driver: d, OutboxMaxKeys: 1 << 22, OutboxMaxBytes: 1 << 30},
		})
		if err != nil {
			tb.Fatal(err)
		}
		return c
	}
	e.a = mk(e.da)
	if !peer {
		e.b = e.a
	} else {
		e.b = mk(hookDriver{Driver: e.db, after: func() {
			select {
			case e.applied <- time.Now():
			default: // throughput runs do not read it
			}
		}, linkUp: func() { e.bLinkUps.Add(1) }})
	}
	e.waitServing(tb)
	return e.withRaw(tb, s.newRaw)
}

// withRaw starts the raw go-redis publisher and subscriber.
func (e *propEnv) withRaw(tb testing.TB, newRaw func() goredis.UniversalClient) *propEnv {
	tb.Helper()
	ctx := context.Background()
	e.raw = newRaw()
	rawSubClient := newRaw()
	if e.rawSharded {
		e.rawSub = rawSubClient.SSubscribe(ctx, e.rawLatCh, e.rawCountCh)
	} else {
		e.rawSub = rawSubClient.Subscribe(ctx, e.rawLatCh, e.rawCountCh)
	}
	for i := 0; i < 2; i++ { // both confirmations
		if _, err := e.rawSub.Receive(ctx); err != nil {
			tb.Fatal(err)
		}
	}
	go func() {
		defer close(e.rawDone)
		defer rawSubClient.Close()
		for {
			msg, err := e.rawSub.Receive(ctx)
			if err != nil {
				return
			}
			if m, ok := msg.(*goredis.Message); ok {
				if m.Channel == e.rawLatCh {
					e.rawRecv <- time.Now()
				} else {
					e.rawCount.Add(1)
				}
			}
		}
	}()
	return e
}

// publishRaw sends msg on ch with the raw client (PUBLISH or SPUBLISH).
func (e *propEnv) publishRaw(ctx context.Context, ch, msg string) error {
	if e.rawSharded {
		return e.raw.SPublish(ctx, ch, msg).Err()
	}
	return e.raw.Publish(ctx, ch, msg).Err()
}

// waitServing waits until both nodes may serve (linked and cleared).
func (e *propEnv) waitServing(tb testing.TB) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !e.a.Stats().Invalidation.Serving || !e.b.Stats().Invalidation.Serving {
		if time.Now().After(deadline) {
			tb.Fatal("nodes not serving after 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

func (e *propEnv) close() {
	_ = e.a.Close()
	_ = e.b.Close() // idempotent when b is a
	_ = e.da.Close()
	_ = e.db.Close()
	_ = e.rawSub.Close()
	<-e.rawDone
	_ = e.raw.Close()
	if e.stop != nil {
		_ = e.stop()
	}
}

// hookDriver wraps a driver so that a function runs after each message the
// wrapped subscription's handler (the engine) has applied, and another at
// each (re)subscription.
type hookDriver struct {
	invalidation.Driver
	after, linkUp func()
}

func (d hookDriver) Subscribe(h invalidation.Handler, o invalidation.SubscribeOptions) (invalidation.Subscription, error) {
	return d.Driver.Subscribe(hookHandler{Handler: h, after: d.after, linkUp: d.linkUp}, o)
}

// LogHead and Replay forward the wrapped driver's replay log, so an engine
// behind the hook catches up as it would without it.
func (d hookDriver) LogHead(ctx context.Context) (invalidation.LogPos, error) {
	if r, ok := d.Driver.(invalidation.Replayer); ok {
		return r.LogHead(ctx)
	}
	return invalidation.LogPos{}, invalidation.ErrReplayDisabled
}

func (d hookDriver) Replay(ctx context.Context, after invalidation.LogPos, fn func(invalidation.LogPos, []byte) error) (invalidation.LogPos, error) {
	if r, ok := d.Driver.(invalidation.Replayer); ok {
		return r.Replay(ctx, after, fn)
	}
	return after, invalidation.ErrReplayDisabled
}

type hookHandler struct {
	invalidation.Handler
	after, linkUp func()
}

func (h hookHandler) HandleMessage(p []byte) {
	h.Handler.HandleMessage(p)
	h.after()
}

func (h hookHandler) HandleLogMessage(pos invalidation.LogPos, p []byte) {
	h.Handler.HandleLogMessage(pos, p)
	h.after()
}

func (h hookHandler) HandleLinkUp() {
	h.Handler.HandleLinkUp()
	h.linkUp()
}

// drain empties the applied channel (messages of earlier phases).
func (e *propEnv) drain() {
	for {
		select {
		case <-e.applied:
		default:
			return
		}
	}
}

// latencyPair measures one raw PUBLISH → subscriber receive and one cache
// Delete(broadcast) on A → applied on B, back to back.
func (e *propEnv) latencyPair(ctx context.Context, key string) (raw, cache time.Duration, err error) {
	t0 := time.Now()
	if err := e.publishRaw(ctx, e.rawLatCh, key); err != nil {
		return 0, 0, err
	}
	select {
	case t1 := <-e.rawRecv:
		raw = t1.Sub(t0)
	case <-time.After(5 * time.Second):
		return 0, 0, fmt.Errorf("raw message not received within 5s")
	}

	t0 = time.Now()
	if err := e.a.Delete(key, optDeleteBroadcast()); err != nil {
		return 0, 0, err
	}
	select {
	case t1 := <-e.applied:
		cache = t1.Sub(t0)
	case <-time.After(5 * time.Second):
		return 0, 0, fmt.Errorf("invalidation not applied on B within 5s")
	}
	return raw, cache, nil
}

// dbgLogger logs the nodes' link events to stderr when PROPDEBUG is set.
func dbgLogger() *slog.Logger {
	if os.Getenv("PROPDEBUG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, nil))
}
