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

// propEnv is one redis-server with two InvaCache nodes on it (a writer A and
// a peer B, each with its own connections, as two processes would have) and
// a raw go-redis publisher/subscriber pair for the baseline.
type propEnv struct {
	srv    *redisserver.Server
	a, b   invacache.Cache[string]
	da, db *redisdriver.Driver

	// applied receives the time B's engine finished applying a message
	// (B's handler returned; the key is gone from B's store by then).
	applied chan time.Time

	raw        *goredis.Client
	rawSub     *goredis.PubSub
	rawRecv    chan time.Time // latency channel: receive times
	rawCount   atomic.Int64   // throughput channel: messages received
	rawDone    chan struct{}
	rawLatCh   string
	rawCountCh string
}

const propChannel = "bench:invalidation"

// newPropEnv starts the environment; without peer, B is not created (for
// the caller-cost measurement, where a peer in the same process would steal
// the CPU a remote peer would not).
func newPropEnv(tb testing.TB, peer bool) *propEnv {
	tb.Helper()
	srv, err := redisserver.Start(redisserver.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	e := &propEnv{srv: srv, applied: make(chan time.Time, 1024), rawRecv: make(chan time.Time, 16),
		rawDone: make(chan struct{}), rawLatCh: "bench:raw:lat", rawCountCh: "bench:raw:count"}

	// Different PoolSize → different connection settings → A and B do not
	// share connections, like two processes.
	e.da, err = redisdriver.New(config.RedisInvalidationConfig{Address: srv.Addr(), Channel: propChannel, PoolSize: 10})
	if err != nil {
		tb.Fatal(err)
	}
	e.db, err = redisdriver.New(config.RedisInvalidationConfig{Address: srv.Addr(), Channel: propChannel, PoolSize: 11})
	if err != nil {
		tb.Fatal(err)
	}
	mk := func(d invalidation.Driver) invacache.Cache[string] {
		c, err := invacache.NewCache[string](config.InvaCacheConfig{
			Logger:       dbgLogger(),
			Backend:      &config.BackendConfig{InMemory: &config.InMemoryConfig{Capacity: 1 << 20}},
			Invalidation: &config.InvalidationConfig{Driver: d},
		})
		if err != nil {
			tb.Fatal(err)
		}
		return c
	}
	e.a = mk(e.da)
	if !peer {
		e.b = e.a
		e.waitServing(tb)
		return e.withRaw(tb)
	}
	e.b = mk(hookDriver{Driver: e.db, after: func() {
		select {
		case e.applied <- time.Now():
		default: // throughput runs do not read it
		}
	}})
	e.waitServing(tb)
	return e.withRaw(tb)
}

// withRaw starts the raw go-redis publisher and subscriber.
func (e *propEnv) withRaw(tb testing.TB) *propEnv {
	tb.Helper()
	srv := e.srv
	e.raw = goredis.NewClient(&goredis.Options{Addr: srv.Addr(), Protocol: 2})
	rawSubClient := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), Protocol: 2})
	e.rawSub = rawSubClient.Subscribe(context.Background(), e.rawLatCh, e.rawCountCh)
	for i := 0; i < 2; i++ { // both confirmations
		if _, err := e.rawSub.Receive(context.Background()); err != nil {
			tb.Fatal(err)
		}
	}
	go func() {
		defer close(e.rawDone)
		defer rawSubClient.Close()
		for {
			msg, err := e.rawSub.Receive(context.Background())
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
	_ = e.srv.Close()
}

// hookDriver wraps a driver so that a function runs after each message the
// wrapped subscription's handler (the engine) has applied.
type hookDriver struct {
	invalidation.Driver
	after func()
}

func (d hookDriver) Subscribe(h invalidation.Handler, o invalidation.SubscribeOptions) (invalidation.Subscription, error) {
	return d.Driver.Subscribe(hookHandler{Handler: h, after: d.after}, o)
}

type hookHandler struct {
	invalidation.Handler
	after func()
}

func (h hookHandler) HandleMessage(p []byte) {
	h.Handler.HandleMessage(p)
	h.after()
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
	if err := e.raw.Publish(ctx, e.rawLatCh, key).Err(); err != nil {
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
