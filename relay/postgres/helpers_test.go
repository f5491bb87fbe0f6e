package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	invacache "github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/config"
	redisdriver "github.com/halilbulentorhon/invacache-go/invalidation/drivers/redis"
	"github.com/halilbulentorhon/invacache-go/relay/postgres/internal/testenv"
)

// pg is the cluster every test of the package shares; each test has its
// own database, slot, publication and redis-server.
var pg *testenv.Postgres

type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	goredis.SetLogger(quietRedis{}) // dial failures are what some tests cause
	if point := os.Getenv(childEnv); point != "" {
		runChild(point) // a relay process for the kill tests; never returns
	}
	var err error
	pg, err = testenv.StartPostgres()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = pg.Close()
	os.Exit(code)
}

var dbSeq atomic.Int64

// env is one test's database and Redis.
type env struct {
	t       testing.TB
	dsn     string
	db      *pgx.Conn
	redis   *testenv.Redis
	channel string
	slot    string
}

// newEnv creates a database with the given setup SQL, and a redis-server.
func newEnv(t testing.TB, setup ...string) *env {
	t.Helper()
	return newEnvOn(t, pg, setup...)
}

// startCluster starts a cluster of the test's own with extra settings.
func startCluster(t testing.TB, settings ...string) *testenv.Postgres {
	t.Helper()
	p, err := testenv.StartPostgres(settings...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// newEnvOn is newEnv on another cluster.
func newEnvOn(t testing.TB, pg *testenv.Postgres, setup ...string) *env {
	t.Helper()
	name := fmt.Sprintf("relay_t%d", dbSeq.Add(1))
	admin := connect(t, pg.DSN("postgres"))
	if _, err := admin.Exec(context.Background(), "CREATE DATABASE "+name); err != nil {
		t.Fatalf("CREATE DATABASE: %v", err)
	}
	admin.Close(context.Background())
	e := &env{t: t, dsn: pg.DSN(name), channel: "relaytest:" + name, slot: name}
	e.db = connect(t, e.dsn)
	t.Cleanup(func() { // after the relays stopped: a slot left behind would hold WAL
		_, _ = e.db.Exec(context.Background(), "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", e.slot)
	})
	for _, s := range setup {
		e.exec(s)
	}
	r, err := testenv.StartRedis()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	e.redis = r
	return e
}

func connect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func (e *env) exec(sql string, args ...any) {
	e.t.Helper()
	if _, err := e.db.Exec(context.Background(), sql, args...); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
}

func (e *env) config(maps ...string) Config {
	e.t.Helper()
	c := Config{Postgres: e.dsn, Redis: redisdriver.Config{Address: e.redis.Addr(), Channel: e.channel},
		Slot: e.slot, Publication: "relay_pub", SlotActiveRetry: 50 * time.Millisecond,
		Logger: testLogger(e.t)}
	for _, s := range maps {
		m, err := ParseMapping(s)
		if err != nil {
			e.t.Fatalf("ParseMapping(%q): %v", s, err)
		}
		c.Mappings = append(c.Mappings, m)
	}
	return c
}

func testLogger(t testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
}

// running is a relay started by start.
type running struct {
	*Relay
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned
	err    error         // Run's result, set before done closes
}

// start runs a relay and waits until it streams.
func start(t testing.TB, cfg Config) *running {
	t.Helper()
	r := startNoWait(t, cfg)
	eventually(t, 20*time.Second, "relay ready", func() bool {
		select {
		case <-r.done:
			t.Fatalf("Run returned before ready: %v", r.err)
		default:
		}
		return r.Ready()
	})
	return r
}

func startNoWait(t testing.TB, cfg Config) *running {
	t.Helper()
	rl, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Relay: rl, cancel: cancel, done: make(chan struct{})}
	go func() { r.err = rl.Run(ctx); close(r.done) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels the relay and waits for Run (idempotent).
func (r *running) stop(t testing.TB) error {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		return r.err
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return within 20s of cancel")
		return nil
	}
}

// replica is a cache on the test's channel, as a service replica runs it.
func (e *env) replica() invacache.Cache[string] {
	e.t.Helper()
	c, err := invacache.NewCache[string](config.InvaCacheConfig{Invalidation: &config.InvalidationConfig{
		Type: "redis", Redis: &config.RedisInvalidationConfig{Address: e.redis.Addr(), Channel: e.channel},
	}})
	if err != nil {
		e.t.Fatalf("NewCache: %v", err)
	}
	e.t.Cleanup(func() { _ = c.Close() })
	return c
}

// cacheAll sets each key locally on each replica and waits until they
// serve it (the replica serves only once its link is proven alive).
func cacheAll(t testing.TB, cs []invacache.Cache[string], keys ...string) {
	t.Helper()
	for _, c := range cs {
		for _, k := range keys {
			if err := c.Set(k, "cached"); err != nil {
				t.Fatalf("Set(%q): %v", k, err)
			}
		}
	}
	eventually(t, 10*time.Second, "replicas serve "+strings.Join(keys, ","), func() bool {
		for _, c := range cs {
			for _, k := range keys {
				if !holds(c, k) {
					return false
				}
			}
		}
		return true
	})
}

func holds(c invacache.Cache[string], key string) bool {
	v, err := c.Get(key)
	return err == nil && v == "cached"
}

func missing(c invacache.Cache[string], key string) bool {
	_, err := c.Get(key)
	return errors.Is(err, invacache.ErrNotFound)
}

// waitMissing waits until every replica misses every key.
func waitMissing(t testing.TB, cs []invacache.Cache[string], keys ...string) {
	t.Helper()
	var held []string
	deadline := time.Now().Add(15 * time.Second)
	for {
		held = held[:0]
		for i, c := range cs {
			for _, k := range keys {
				if !missing(c, k) {
					held = append(held, fmt.Sprintf("%s (replica %d)", k, i))
				}
			}
		}
		if len(held) == 0 {
			return
		}
		if time.Now().After(deadline) {
			if len(held) > 10 {
				held = append(held[:10], fmt.Sprintf("and %d more", len(held)-10))
			}
			t.Fatalf("after 15s, still cached: %s", strings.Join(held, ", "))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func leakCheck(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}
