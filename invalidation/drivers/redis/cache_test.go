package redis_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/halilbulentorhon/invacache-go/internal/poll"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/backend/option"
	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/faultproxy"
	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
	"github.com/halilbulentorhon/invacache-go/internal/redisserver"
	"github.com/halilbulentorhon/invacache-go/internal/wire"
	"github.com/halilbulentorhon/invacache-go/invalidation/drivers/redis"
)

// node builds a cache on the Redis driver from a DriverConfig map (the
// seed's form), closed in Cleanup.
func node(t testing.TB, driverConfig map[string]any, tune ...func(*config.InvalidationConfig)) invacache.Cache[string] {
	t.Helper()
	inv := &config.InvalidationConfig{Type: "redis", DriverConfig: driverConfig}
	for _, f := range tune {
		f(inv)
	}
	c, err := invacache.NewCache[string](config.InvaCacheConfig{Invalidation: inv})
	if err != nil {
		t.Fatalf("NewCache: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// nodes starts a server and n caches on one fresh channel.
func nodes(t testing.TB, n int, tune ...func(*config.InvalidationConfig)) (*redisserver.Server, string, []invacache.Cache[string]) {
	t.Helper()
	srv := redisserver.StartT(t, redisserver.Options{})
	ch := fmt.Sprintf("cache-test:%s", t.Name())
	cs := make([]invacache.Cache[string], n)
	for i := range cs {
		cs[i] = node(t, map[string]any{"Address": srv.Addr(), "Channel": ch}, tune...)
	}
	return srv, ch, cs
}

func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, within, what, cond)
}

func missing(c invacache.Cache[string], key string) bool {
	_, err := c.Get(key)
	return errors.Is(err, invacache.ErrNotFound)
}

func holds(c invacache.Cache[string], key, want string) bool {
	v, err := c.Get(key)
	return err == nil && v == want
}

// setAll stores key=v locally on every cache and waits until each serves it
// (a cache may not serve right after it linked up and cleared).
func setAll(t testing.TB, cs []invacache.Cache[string], key, v string) {
	t.Helper()
	for i, c := range cs {
		deadline := time.Now().Add(10 * time.Second)
		for {
			if err := c.Set(key, v); err != nil {
				t.Fatalf("Set: %v", err)
			}
			if holds(c, key, v) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("cache %d does not serve %s after 10s; stats %+v", i, key, c.Stats().Invalidation)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func flush(t testing.TB, c invacache.Cache[string]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

func TestCachePropagation(t *testing.T) {
	leakcheck.Check(t)
	_, _, cs := nodes(t, 3)
	a, b, c := cs[0], cs[1], cs[2]

	t.Run("Set with invalidation", func(t *testing.T) {
		setAll(t, cs, "k", "v1")
		if err := a.Set("k", "v2", option.WithInvalidation()); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "peers drop k", func() bool { return missing(b, "k") && missing(c, "k") })
		// Self-suppression: the writer keeps its new value.
		flush(t, a)
		if !holds(a, "k", "v2") {
			v, err := a.Get("k")
			t.Errorf("writer Get(k) = %q, %v; want v2", v, err)
		}
	})
	t.Run("Delete with invalidation", func(t *testing.T) {
		setAll(t, cs, "d", "v")
		if err := b.Delete("d", option.WithDeleteInvalidation()); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "every node drops d", func() bool { return missing(a, "d") && missing(b, "d") && missing(c, "d") })
	})
	t.Run("Clear with invalidation", func(t *testing.T) {
		setAll(t, cs, "x", "1")
		setAll(t, cs, "y", "2")
		if err := c.Clear(option.WithClearInvalidation()); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "every node cleared", func() bool { return a.Len() == 0 && b.Len() == 0 && c.Len() == 0 })
	})
	t.Run("plain writes stay local", func(t *testing.T) {
		setAll(t, cs, "local", "v")
		if err := a.Set("local", "mine"); err != nil {
			t.Fatal(err)
		}
		if err := a.Delete("local"); err != nil {
			t.Fatal(err)
		}
		flush(t, a)
		if !holds(b, "local", "v") || !holds(c, "local", "v") {
			t.Error("a plain Set/Delete reached the peers")
		}
	})
}

// An operator's `redis-cli publish <channel> <key>` invalidates that key on
// every node; an empty payload clears.
func TestCacheRawKeyFromAnotherClient(t *testing.T) {
	leakcheck.Check(t)
	srv, ch, cs := nodes(t, 2)
	setAll(t, cs, "user:1", "alice")
	setAll(t, cs, "user:2", "bob")
	if _, err := srv.Do("PUBLISH", ch, "user:1"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "user:1 dropped everywhere", func() bool { return missing(cs[0], "user:1") && missing(cs[1], "user:1") })
	for i, c := range cs {
		if !holds(c, "user:2", "bob") {
			t.Errorf("cache %d lost user:2 on a raw invalidation of user:1", i)
		}
	}
	if _, err := srv.Do("PUBLISH", ch, ""); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "empty payload clears", func() bool { return cs[0].Len() == 0 && cs[1].Len() == 0 })
}

// Garbage on the channel never breaks a node (rule 7).
func TestCacheSurvivesGarbage(t *testing.T) {
	leakcheck.Check(t)
	srv, ch, cs := nodes(t, 2)
	a, b := cs[0], cs[1]
	pub := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), Protocol: 2})
	defer pub.Close()

	catchUps := b.Stats().Invalidation.CatchUps
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 2000
	total := 0
	ctx := context.Background()
	_, err := pub.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i := 0; i < n; i++ {
			size := rng.IntN(512)
			if i%100 == 0 {
				size = rng.IntN(1 << 20) // a few big ones, up to 1 MiB
			}
			buf := make([]byte, size)
			for j := range buf {
				buf[j] = byte(rng.Uint32())
			}
			switch i % 4 {
			case 0: // looks like an envelope, is not
				buf = append([]byte(wire.Magic), buf...)
			case 1: // a real envelope, truncated
				msg := wire.AppendMessage(nil, wire.Message{Version: wire.Version, Origin: rng.Uint64(), Seq: 1, Ops: []wire.Op{{Keys: []string{"a", "b"}}}})
				buf = msg[:rng.IntN(len(msg))]
			}
			total += len(buf)
			p.Publish(ctx, ch, buf)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("published %d garbage payloads, %d bytes", n, total)
	// Every payload reaches b unless b declares its link dead meanwhile (on
	// a loaded machine the PONGs can come late behind the backlog): then
	// the rest is lost, as Pub/Sub loses messages, and b resubscribes and
	// catches up or clears (raw keys seen live hole the log). Either way b
	// must come out of it serving and applying invalidations: it serves a
	// value set now, then drops it on a peer's invalidation sent after
	// the garbage.
	if !poll.Within(30*time.Second, func() bool {
		_ = b.Set("after", "v")
		v, err := b.Get("after")
		return err == nil && v == "v"
	}) {
		t.Fatalf("b does not serve a fresh value within 30s of the garbage; stats %+v", b.Stats().Invalidation)
	}
	if err := a.Delete("after", option.WithDeleteInvalidation()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "propagation after garbage", func() bool { return missing(b, "after") })
	st := b.Stats().Invalidation
	t.Logf("peer stats after garbage: received=%d malformed=%d raw=%d gaps=%d catch-ups=%d", st.MessagesReceived, st.Malformed, st.RawKeys, st.Gaps, st.CatchUps-catchUps)
}

// A broadcast issued while Redis is down leaves once it is back (outbox
// retry) and takes effect on the peer; the peer also clears on resubscribe
// (gap = clear), so nothing stale survives the outage. The writer reaches
// Redis through a proxy held shut until the peer has resubscribed, so that
// the retried message provably lands on a live subscription.
func TestCacheRedisRestart(t *testing.T) {
	leakcheck.Check(t)
	srv := redisserver.StartT(t, redisserver.Options{})
	px := faultproxy.NewT(t, srv.Addr())
	tune := func(ic *config.InvalidationConfig) { ic.RetryBackoffMax = 100 * time.Millisecond }
	a := node(t, map[string]any{"Address": px.Addr(), "Channel": "restart"}, tune)
	b := node(t, map[string]any{"Address": srv.Addr(), "Channel": "restart"}, tune)
	setAll(t, []invacache.Cache[string]{a, b}, "k", "old")
	setAll(t, []invacache.Cache[string]{a, b}, "other", "old")
	gaps := b.Stats().Invalidation.ClearsOnGap

	srv.Kill()
	px.Refuse()
	if err := a.Set("k", "new", option.WithInvalidation()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "publish failing while Redis is down", func() bool { return a.Stats().Invalidation.PublishFailures > 0 })
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "peer cleared on resubscribe", func() bool { return b.Stats().Invalidation.ClearsOnGap > gaps })
	if !missing(b, "other") {
		t.Error("a stale entry survived the outage on the peer")
	}
	// The peer caches k again (say, read from a lagging replica) before the
	// writer's queued invalidation arrives: the retry must still drop it.
	setAll(t, []invacache.Cache[string]{b}, "k", "old")
	px.Accept()
	flush(t, a)
	eventually(t, 5*time.Second, "queued invalidation applied after restart", func() bool { return missing(b, "k") })
	if !holds(a, "k", "new") && !missing(a, "k") {
		t.Error("the writer serves something other than its own write")
	}
}

// CLIENT KILL of the subscriptions: the nodes resubscribe and, without the
// replay log, clear (with it they catch up: cache_replay_test.go).
func TestCacheConnectionsCut(t *testing.T) {
	leakcheck.Check(t)
	srv := redisserver.StartT(t, redisserver.Options{})
	cs := []invacache.Cache[string]{}
	for range 2 {
		cs = append(cs, node(t, map[string]any{"Address": srv.Addr(), "Channel": "cut", "DisableReplay": true}))
	}
	setAll(t, cs, "k", "v")
	gaps := cs[1].Stats().Invalidation.ClearsOnGap
	if _, err := srv.Do("CLIENT", "KILL", "TYPE", "pubsub"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "gap → clear", func() bool { return cs[1].Stats().Invalidation.ClearsOnGap > gaps })
	if !missing(cs[1], "k") {
		t.Error("k survived a cut subscription")
	}
	setAll(t, cs, "k2", "v")
	if err := cs[0].Delete("k2", option.WithDeleteInvalidation()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "propagation after the cut", func() bool { return missing(cs[1], "k2") })
}

// A blackholed link: the node stops serving within MaxStaleness, and serves
// again after the heal.
func TestCacheBlackholeStopsServing(t *testing.T) {
	leakcheck.Check(t)
	srv := redisserver.StartT(t, redisserver.Options{})
	px := faultproxy.NewT(t, srv.Addr())
	const maxStaleness = 600 * time.Millisecond
	tune := func(ic *config.InvalidationConfig) { ic.MaxStaleness = maxStaleness }
	ch := "cache-test:blackhole"
	b := node(t, map[string]any{"Address": px.Addr(), "Channel": ch, "DialTimeout": "1s"}, tune)
	a := node(t, map[string]any{"Address": srv.Addr(), "Channel": ch}, tune)
	setAll(t, []invacache.Cache[string]{b}, "k", "v")

	px.Blackhole()
	start := time.Now()
	eventually(t, maxStaleness+2*time.Second, "blackholed node stops serving", func() bool { return missing(b, "k") })
	t.Logf("stopped serving %v after the blackhole (MaxStaleness %v)", time.Since(start).Round(time.Millisecond), maxStaleness)

	// A write elsewhere during the partition must not be missed afterwards.
	if err := a.Set("k", "new", option.WithInvalidation()); err != nil {
		t.Fatal(err)
	}
	flush(t, a)
	px.Heal()
	eventually(t, 10*time.Second, "serving after heal", func() bool { return b.Stats().Invalidation.Serving })
	if holds(b, "k", "v") {
		t.Error("stale value served after the partition healed")
	}
	setAll(t, []invacache.Cache[string]{b}, "k2", "v")
	if err := a.Delete("k2", option.WithDeleteInvalidation()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "propagation after heal", func() bool { return missing(b, "k2") })
}

func TestCacheAuthAndTLS(t *testing.T) {
	leakcheck.Check(t)
	t.Run("ACL user", func(t *testing.T) {
		srv := redisserver.StartT(t, redisserver.Options{Password: "root-pw", Users: []redisserver.User{{Name: "cache", Password: "cache-pw"}}})
		dc := map[string]any{"Address": srv.Addr(), "Username": "cache", "Password": "cache-pw", "Channel": "acl"}
		checkPair(t, node(t, dc), node(t, dc))
	})
	t.Run("password", func(t *testing.T) {
		srv := redisserver.StartT(t, redisserver.Options{Password: "root-pw"})
		dc := map[string]any{"Address": srv.Addr(), "Password": "root-pw", "Channel": "pw"}
		checkPair(t, node(t, dc), node(t, dc))
	})
	t.Run("TLS", func(t *testing.T) {
		if !redisserver.TLSSupported() {
			t.Skip("the installed redis-server was built without TLS support")
		}
		srv := redisserver.StartT(t, redisserver.Options{TLS: true})
		cc := srv.ClientCerts()
		typed := &config.RedisInvalidationConfig{
			Address: srv.Addr(), Channel: "tls",
			TLS: &config.TLSConfig{Enabled: true, CAFile: cc.CAFile, CertFile: cc.CertFile, KeyFile: cc.KeyFile, ServerName: "localhost"},
		}
		mk := func() invacache.Cache[string] {
			c, err := invacache.NewCache[string](config.InvaCacheConfig{Invalidation: &config.InvalidationConfig{Type: "redis", Redis: typed}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Close() })
			return c
		}
		checkPair(t, mk(), mk())
	})
}

// checkPair checks that a broadcast Delete on a reaches b.
func checkPair(t *testing.T, a, b invacache.Cache[string]) {
	t.Helper()
	setAll(t, []invacache.Cache[string]{a, b}, "k", "v")
	if err := a.Delete("k", option.WithDeleteInvalidation()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !missing(b, "k") {
		if time.Now().After(deadline) {
			t.Fatalf("no propagation within 5s:\nwriter %+v\npeer   %+v", a.Stats().Invalidation, b.Stats().Invalidation)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// 200 caches on one Redis hold one subscription connection and at most
// PoolSize publish connections between them, and closing them leaves no
// goroutine behind.
func TestManyCachesShareAndClose(t *testing.T) {
	leakcheck.Check(t)
	srv := redisserver.StartT(t, redisserver.Options{})
	const n, poolSize = 200, 4
	cs := make([]invacache.Cache[string], n)
	for i := range cs {
		c, err := invacache.NewCache[string](config.InvaCacheConfig{
			Backend: &config.BackendConfig{InMemory: &config.InMemoryConfig{ShardCount: 1, Capacity: 16}},
			Invalidation: &config.InvalidationConfig{
				Type: "redis", DriverConfig: map[string]any{"Address": srv.Addr(), "Channel": fmt.Sprintf("many:%d", i%3), "PoolSize": poolSize},
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		cs[i] = c
	}
	for _, c := range cs {
		if err := c.Delete("k", option.WithDeleteInvalidation()); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range cs {
		flush(t, c)
	}
	clients := func(typ string) int {
		out, err := srv.Do("CLIENT", "LIST", "TYPE", typ)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Count(out, "id=")
	}
	if got := clients("pubsub"); got != 1 {
		t.Errorf("%d caches hold %d subscription connections, want 1", n, got)
	}
	// go-redis may dial one connection past PoolSize while many callers
	// wait (a dial finishing for a caller that has left); it drops it on
	// release.
	if got := clients("normal") - 1; got > poolSize+1 { // minus the CLIENT LIST connection
		t.Errorf("%d caches hold %d publish connections, want at most PoolSize %d (+1)", n, got, poolSize)
	}
	for _, c := range cs {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	eventually(t, 5*time.Second, "connections released", func() bool { return clients("pubsub") == 0 && clients("normal") == 1 })
}

// An unreachable Redis never blocks NewCache past DialTimeout; the cache
// works locally and links up when Redis arrives.
func TestCacheStartsWithRedisDown(t *testing.T) {
	leakcheck.Check(t)
	srv := redisserver.StartT(t, redisserver.Options{})
	srv.Kill()
	start := time.Now()
	c := node(t, map[string]any{"Address": srv.Addr(), "DialTimeout": "300ms"})
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("NewCache took %v with Redis down (DialTimeout 300ms)", took)
	}
	if err := c.Set("k", "v"); err != nil {
		t.Fatal(err)
	}
	if !missing(c, "k") {
		t.Error("a cache without a link served a cached value (MaxStaleness)")
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	setAll(t, []invacache.Cache[string]{c}, "k", "v")
}

// A cache on a channel the ACL user may not use fails NewCache with an error
// naming the channel and the permission, and the caches sharing its
// connection on an allowed channel keep propagating (issue 10 item 4).
func TestCacheOnRefusedChannelFailsAlone(t *testing.T) {
	leakcheck.Check(t)
	srv := redisserver.StartT(t, redisserver.Options{
		Users: []redisserver.User{{Name: "app", Password: "pw", Rules: []string{"~*", "resetchannels", "&app:*", "+@all"}}},
	})
	dc := func(ch string) map[string]any {
		return map[string]any{"Address": srv.Addr(), "Username": "app", "Password": "pw", "Channel": ch}
	}
	a := node(t, dc("app:inv"))
	b := node(t, dc("app:inv"))
	checkPair(t, a, b)

	_, err := invacache.NewCache[string](config.InvaCacheConfig{Invalidation: &config.InvalidationConfig{Type: "redis", DriverConfig: dc("other:inv")}})
	if err == nil || !errors.Is(err, invacache.ErrInvalidConfig) || !errors.Is(err, redis.ErrNoPermission) ||
		!strings.Contains(err.Error(), `"other:inv"`) || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("NewCache on other:inv: err = %v, want ErrInvalidConfig and ErrNoPermission naming the channel and NOPERM", err)
	}
	checkPair(t, b, a)
	if s := a.Stats().Invalidation; s.Gaps != 1 || !s.LinkUp {
		t.Errorf("allowed cache: %d gaps, link up %v; want only its first subscribe and the link up", s.Gaps, s.LinkUp)
	}
}
