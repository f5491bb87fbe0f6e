package redis_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
	"github.com/halilbulentorhon/invacache-go/internal/redisserver"
	"github.com/halilbulentorhon/invacache-go/invalidation/drivers/redis"
)

// pubsubCount counts the server's connections in Pub/Sub mode.
func pubsubCount(t testing.TB, srv *redisserver.Server) int {
	t.Helper()
	out, err := srv.Do("CLIENT", "LIST", "TYPE", "pubsub")
	if err != nil {
		t.Fatalf("CLIENT LIST: %v", err)
	}
	return strings.Count(out, "id=")
}

func newPublisher(t testing.TB, cfg redis.Config) *redis.Publisher {
	t.Helper()
	p, err := redis.NewPublisher(cfg)
	if err != nil {
		t.Fatalf("NewPublisher: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// A publisher invalidates keys in, and clears, a cache on its channel, with
// the cache's envelope (the cache counts its messages as a peer's, no gap)
// and without a subscription connection of its own.
func TestPublisherInvalidatesCaches(t *testing.T) {
	leakcheck.Check(t)
	srv, ch, cs := nodes(t, 2)
	setAll(t, cs, "k1", "v")
	setAll(t, cs, "k2", "v")
	gaps := cs[0].Stats().Invalidation.Gaps
	p := newPublisher(t, redis.Config{Address: srv.Addr(), Channel: ch})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Invalidate(ctx, "k1", "k1"); err != nil {
		t.Fatalf("Invalidate: %v", err)
	}
	for i, c := range cs {
		eventually(t, 5*time.Second, "k1 dropped", func() bool { return missing(c, "k1") })
		if !holds(c, "k2", "v") {
			t.Errorf("cache %d lost k2", i)
		}
	}
	if err := p.Clear(ctx); err != nil {
		t.Fatalf("Clear: %v", err)
	}
	for _, c := range cs {
		eventually(t, 5*time.Second, "cache cleared", func() bool { return c.Len() == 0 })
	}
	st := cs[0].Stats().Invalidation
	if st.Gaps != gaps || st.Malformed != 0 {
		t.Errorf("cache: gaps %d -> %d, malformed %d; want the publisher's messages in sequence", gaps, st.Gaps, st.Malformed)
	}
	if got, want := p.Stats(), (redis.PublisherStats{KeysSent: 1, ClearsSent: 1, MessagesSent: 2}); got != want {
		t.Errorf("Stats() = %+v, want %+v (duplicate keys coalesced)", got, want)
	}
	if got := pubsubCount(t, srv); got != 1 {
		t.Errorf("pubsub connections = %d, want 1 (the caches' shared one; the publisher subscribes nothing)", got)
	}
}

// While Redis is down, Invalidate returns the context's error and keeps the
// keys queued; they leave once Redis is back.
func TestPublisherRetriesUntilRedisIsBack(t *testing.T) {
	leakcheck.Check(t)
	srv := redisserver.StartT(t, redisserver.Options{})
	p := newPublisher(t, redis.Config{Address: srv.Addr(), Channel: "pub-retry", DialTimeout: 200 * time.Millisecond})
	srv.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := p.Invalidate(ctx, "k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Invalidate while Redis is down: %v, want context.DeadlineExceeded", err)
	}
	if got := p.Stats().OutboxDepth; got != 1 {
		t.Errorf("OutboxDepth = %d, want 1 (still queued)", got)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the queued key published", func() bool {
		s := p.Stats()
		return s.OutboxDepth == 0 && s.KeysSent == 1
	})
}

func TestPublisherClosedAndInvalid(t *testing.T) {
	leakcheck.Check(t)
	srv := redisserver.StartT(t, redisserver.Options{})
	p, err := redis.NewPublisher(redis.Config{Address: srv.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	if p.Channel() != redis.DefaultChannel || p.Origin() == 0 {
		t.Errorf("Channel() = %q, Origin() = %x; want the default channel and a random origin", p.Channel(), p.Origin())
	}
	for i := 0; i < 2; i++ {
		if err := p.Close(); err != nil {
			t.Errorf("Close #%d: %v", i+1, err)
		}
	}
	if err := p.Invalidate(context.Background(), "k"); !errors.Is(err, redis.ErrClosed) {
		t.Errorf("Invalidate after Close: %v, want ErrClosed", err)
	}
	if err := p.Clear(context.Background()); !errors.Is(err, redis.ErrClosed) {
		t.Errorf("Clear after Close: %v, want ErrClosed", err)
	}
	if _, err := redis.NewPublisher(redis.Config{Address: srv.Addr(), PoolSize: -1}); !errors.Is(err, config.ErrInvalidConfig) || !errors.Is(err, invacache.ErrInvalidConfig) {
		t.Errorf("NewPublisher(PoolSize -1): %v, want ErrInvalidConfig", err)
	}
}

// A key longer than a message carries is refused by Invalidate with
// ErrInvalidArgument (the root package's sentinel too), queuing nothing,
// instead of reaching the caches as an envelope that makes each clear.
func TestPublisherRefusesKeyTooLong(t *testing.T) {
	leakcheck.Check(t)
	srv, ch, cs := nodes(t, 1)
	setAll(t, cs, "k", "v")
	p := newPublisher(t, redis.Config{Address: srv.Addr(), Channel: ch})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	long := strings.Repeat("x", 1<<20)
	err := p.Invalidate(ctx, "k", long)
	if !errors.Is(err, redis.ErrInvalidArgument) || !errors.Is(err, invacache.ErrInvalidArgument) {
		t.Fatalf("Invalidate(key of %d bytes) error = %v, want one wrapping ErrInvalidArgument", len(long), err)
	}
	if !strings.Contains(err.Error(), "1048576") {
		t.Errorf("Invalidate error %q does not name the key's length", err)
	}
	if got := p.Stats(); got.OutboxDepth != 0 || got.MessagesSent != 0 {
		t.Errorf("publisher stats after a refused call = %+v, want nothing queued or sent", got)
	}
	if !holds(cs[0], "k", "v") {
		t.Errorf("the cache lost k after a refused call")
	}
}
