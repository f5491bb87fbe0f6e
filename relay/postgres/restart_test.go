package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	goredis "github.com/redis/go-redis/v9"

	invacache "github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/relay/postgres/internal/testenv"
)

// TestKillAndRestartLosesNothing abandons a relay (as SIGKILL would: no
// more publishes, no more acknowledgements, the connection dropped)
// between receiving a batch and publishing it, and between publishing and
// acknowledging it, under a stream of single-row updates; a new relay on
// the same slot then invalidates every committed update's key, without a
// clear. A short StatusInterval and a pause in the hook give a wrong
// implementation (acknowledging what was received, not published) the
// time to lose changes.
func TestKillAndRestartLosesNothing(t *testing.T) {
	for _, point := range []string{"before publish", "after publish"} {
		t.Run(point, func(t *testing.T) {
			leakCheck(t)
			const n = 300
			e := newEnv(t, `CREATE TABLE items (id int PRIMARY KEY, v int NOT NULL);
				INSERT INTO items SELECT g, 0 FROM generate_series(1, 300) g;
				CREATE PUBLICATION relay_pub FOR TABLE items`)
			c := e.replica()
			cs := []invacache.Cache[string]{c}
			keys := make([]string, n)
			for i := range keys {
				keys[i] = fmt.Sprintf("item:%d", i+1)
			}
			cacheAll(t, cs, append(keys, "control")...)

			cfg := e.config("items=item:{id}")
			cfg.StatusInterval = 5 * time.Millisecond
			var calls atomic.Int32
			kill := func() bool {
				if calls.Add(1) < 3 {
					return true
				}
				time.Sleep(50 * time.Millisecond) // let a wrong relay acknowledge
				return false
			}
			cfg.hooks = &hooks{}
			if point == "before publish" {
				cfg.hooks.beforePublish = kill
			} else {
				cfg.hooks.afterPublish = kill
			}
			first := start(t, cfg)

			wrote := make(chan error, 1)
			go func() {
				db := connect(t, e.dsn)
				for i := 1; i <= n; i++ {
					if _, err := db.Exec(context.Background(), "UPDATE items SET v = v + 1 WHERE id = $1", i); err != nil {
						wrote <- err
						return
					}
				}
				wrote <- nil
			}()
			select {
			case <-first.done:
			case <-time.After(20 * time.Second):
				t.Fatal("the hook did not stop the first relay")
			}
			if !errors.Is(first.err, errAbandoned) {
				t.Fatalf("first relay: Run = %v, want the hook's abandonment", first.err)
			}
			cfg.hooks, cfg.StatusInterval = nil, 0
			second := start(t, cfg)
			if err := <-wrote; err != nil {
				t.Fatal(err)
			}
			waitMissing(t, cs, keys...)
			if !holds(c, "control") {
				t.Fatalf("the replica cleared (second relay's clears %v); a restart on an intact slot must not clear", second.Stats().Clears)
			}
			if cl := second.Stats().Clears; len(cl) != 0 {
				t.Errorf("second relay Clears = %v, want none", cl)
			}
		})
	}
}

// TestRestartAndDroppedSlot: a restart on an intact slot sends no clear and
// publishes what changed meanwhile; a slot dropped while the relay was
// down (its changes lost) makes the next start clear every replica once.
func TestRestartAndDroppedSlot(t *testing.T) {
	leakCheck(t)
	e := newEnv(t, usersSetup, "INSERT INTO users VALUES (1, 'a@x', 'A'), (2, 'b@x', 'B')")
	c := e.replica()
	cs := []invacache.Cache[string]{c}
	cfg := e.config(usersMap)
	r := start(t, cfg)
	cacheAll(t, cs, "control", "user:1")
	e.exec("UPDATE users SET name = 'x' WHERE id = 1")
	waitMissing(t, cs, "user:1")
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}

	// Intact slot: what changed while down is published, nothing cleared.
	cacheAll(t, cs, "user:1")
	e.exec("UPDATE users SET name = 'y' WHERE id = 1")
	r = start(t, cfg)
	waitMissing(t, cs, "user:1")
	if !holds(c, "control") || len(r.Stats().Clears) != 0 {
		t.Fatalf("restart on an intact slot cleared (Clears %v)", r.Stats().Clears)
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}

	// Dropped slot: the update made while no slot existed is in no stream.
	e.exec("SELECT pg_drop_replication_slot($1)", e.slot)
	e.exec("UPDATE users SET name = 'z' WHERE id = 2")
	r = start(t, cfg)
	waitMissing(t, cs, "control")
	eventually(t, 5*time.Second, "one clear", func() bool { return r.Stats().Clears[ClearSlotRecreated] == 1 })
}

// TestIdleWatchedTableAdvancesSlot: with the watched table idle and an
// unwatched one busy, the slot's confirmed_flush_lsn still advances past
// the busy table's writes (the keepalive's WAL end is acknowledged).
func TestIdleWatchedTableAdvancesSlot(t *testing.T) {
	leakCheck(t)
	e := newEnv(t, usersSetup, "CREATE TABLE busy (id serial PRIMARY KEY, v text)")
	start(t, e.config(usersMap))
	for range 50 {
		e.exec("INSERT INTO busy (v) SELECT repeat('x', 100) FROM generate_series(1, 20)")
	}
	var target string
	if err := e.db.QueryRow(context.Background(), "SELECT pg_current_wal_insert_lsn()::text").Scan(&target); err != nil {
		t.Fatal(err)
	}
	want, _ := pglogrepl.ParseLSN(target)
	var got pglogrepl.LSN
	eventually(t, 15*time.Second, "confirmed_flush_lsn ≥ "+target, func() bool {
		got = e.confirmedFlush()
		return got >= want
	})
}

// TestRedisDownThenBack: while Redis is down the relay stops acknowledging
// (PostgreSQL keeps the WAL); once it is back, the change is published and
// acknowledged.
func TestRedisDownThenBack(t *testing.T) {
	leakCheck(t)
	e := newEnv(t, usersSetup, "INSERT INTO users VALUES (1, 'a@x', 'A')")
	c := e.replica()
	cs := []invacache.Cache[string]{c}
	cfg := e.config(usersMap)
	cfg.StatusInterval = 20 * time.Millisecond
	r := start(t, cfg)
	cacheAll(t, cs, "user:1")
	keys0 := r.Stats().KeysPublished

	e.redis.Stop()
	var commit string
	ctx := context.Background()
	e.exec("UPDATE users SET name = 'down' WHERE id = 1")
	if err := e.db.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&commit); err != nil { // the commit's end (the write position lags with synchronous_commit=off)
		t.Fatal(err)
	}
	after, _ := pglogrepl.ParseLSN(commit)
	// The walsender sent the change to the relay...
	eventually(t, 10*time.Second, "change sent to the relay", func() bool {
		var sent *string
		err := e.db.QueryRow(ctx, "SELECT sent_lsn::text FROM pg_stat_replication WHERE application_name <> '' OR true LIMIT 1").Scan(&sent)
		if err != nil || sent == nil {
			return false
		}
		l, _ := pglogrepl.ParseLSN(*sent)
		return l >= after
	})
	// ...which does not acknowledge it while Redis is down (many status
	// intervals pass meanwhile).
	for range 10 {
		time.Sleep(20 * time.Millisecond)
		if got := e.confirmedFlush(); got >= after {
			t.Fatalf("confirmed_flush_lsn %v passed the unpublished change at %v while Redis was down", got, after)
		}
	}
	if err := e.redis.Start(); err != nil {
		t.Fatal(err)
	}
	waitMissing(t, cs, "user:1")
	eventually(t, 15*time.Second, "acknowledged after Redis returned", func() bool { return e.confirmedFlush() >= after })
	if got := r.Stats().KeysPublished; got < keys0+2 {
		t.Errorf("KeysPublished = %d, want ≥ %d", got, keys0+2)
	}
}

// TestSecondRelayWaitsAndTakesOver: a second relay on the same slot waits
// while the first streams, and takes over (without a clear) when it stops.
func TestSecondRelayWaitsAndTakesOver(t *testing.T) {
	leakCheck(t)
	e := newEnv(t, usersSetup, "INSERT INTO users VALUES (1, 'a@x', 'A')")
	c := e.replica()
	cs := []invacache.Cache[string]{c}
	cfg := e.config(usersMap)
	a := start(t, cfg)
	b := startNoWait(t, cfg)
	cacheAll(t, cs, "control", "user:1")
	e.exec("UPDATE users SET name = 'x' WHERE id = 1") // through a
	waitMissing(t, cs, "user:1")
	if b.Ready() {
		t.Fatal("the second relay streams while the first holds the slot")
	}
	if err := a.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	eventually(t, 20*time.Second, "second relay ready", b.Ready)
	cacheAll(t, cs, "user:1")
	e.exec("UPDATE users SET name = 'y' WHERE id = 1")
	waitMissing(t, cs, "user:1")
	if !holds(c, "control") || len(b.Stats().Clears) != 0 {
		t.Fatalf("takeover cleared (Clears %v)", b.Stats().Clears)
	}
}

func (e *env) confirmedFlush() pglogrepl.LSN {
	e.t.Helper()
	var s *string
	err := e.db.QueryRow(context.Background(), "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", e.slot).Scan(&s)
	if err != nil || s == nil {
		return 0
	}
	l, _ := pglogrepl.ParseLSN(*s)
	return l
}

// TestBadInput: each misconfiguration fails Run (or New) at start with an
// error naming the cause, without streaming.
func TestBadInput(t *testing.T) {
	leakCheck(t)
	e := newEnv(t, `CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL);
		CREATE TABLE other (id int PRIMARY KEY);
		CREATE PUBLICATION relay_pub FOR TABLE users;
		CREATE ROLE norepl LOGIN;
		GRANT SELECT ON ALL TABLES IN SCHEMA public TO norepl`)
	closed := "postgres://postgres@127.0.0.1:1/x?sslmode=disable&connect_timeout=2"
	tests := []struct {
		name string
		edit func(*Config)
		is   error
		want string
	}{
		{"no replication rights", func(c *Config) { c.Postgres = pg.DSNUser("norepl", dbName(e.dsn)) }, ErrServerSettings, `ALTER ROLE "norepl" WITH REPLICATION`},
		{"missing table", func(c *Config) { c.Mappings[0].Table = "nope" }, ErrSchema, "table public.nope does not exist"},
		{"missing column", func(c *Config) { c.Mappings[0].Keys = []string{"u:{nope}"} }, ErrSchema, `no column "nope"`},
		{"column not in replica identity", func(c *Config) { c.Mappings[0].Keys = []string{"u:{email}"} }, ErrSchema, `"email" of table public.users is not in its replica identity`},
		{"fix names the SQL", func(c *Config) { c.Mappings[0].Keys = []string{"u:{email}"} }, ErrSchema, `ALTER TABLE "public"."users" REPLICA IDENTITY FULL`},
		{"missing publication", func(c *Config) { c.Publication = "nopub" }, ErrSchema, `CREATE PUBLICATION "nopub" FOR TABLE "public"."users"`},
		{"table not in publication", func(c *Config) { c.Mappings[0].Table = "other"; c.Mappings[0].Keys = []string{"o:{id}"} }, ErrSchema, `ALTER PUBLICATION "relay_pub" ADD TABLE "public"."other"`},
		{"unreachable postgres", func(c *Config) { c.Postgres = closed }, ErrConnect, "127.0.0.1"},
		{"unreachable redis", func(c *Config) { c.Redis.Address = "127.0.0.1:1"; c.Redis.DialTimeout = time.Second }, ErrConnect, "redis 127.0.0.1:1"},
		{"template syntax", func(c *Config) { c.Mappings[0].Keys = []string{"u:{id"} }, ErrInvalidConfig, "not closed"},
		{"no mappings", func(c *Config) { c.Mappings = nil }, ErrInvalidConfig, "Mappings"},
		{"bad slot name", func(c *Config) { c.Slot = "Bad-Name" }, ErrInvalidConfig, "Slot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := e.config("users=u:{id}")
			tt.edit(&cfg)
			r, err := New(cfg)
			if err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				err = r.Run(ctx)
				cancel()
			}
			if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want %v containing %q", err, tt.is, tt.want)
			}
		})
	}
}

func dbName(dsn string) string {
	s := dsn[strings.LastIndexByte(dsn, '/')+1:]
	name, _, _ := strings.Cut(s, "?")
	return name
}

// TestWALLevelNotLogical: a server without wal_level=logical is refused
// with the setting to change.
func TestWALLevelNotLogical(t *testing.T) {
	leakCheck(t)
	other, err := testenv.StartPostgres("wal_level=replica")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Close() })
	e := newEnv(t)
	cfg := e.config("users=u:{id}")
	cfg.Postgres = other.DSN("postgres")
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = r.Run(context.Background())
	if !errors.Is(err, ErrServerSettings) || !strings.Contains(err.Error(), "ALTER SYSTEM SET wal_level = logical") {
		t.Fatalf("Run = %v, want ErrServerSettings naming ALTER SYSTEM SET wal_level = logical", err)
	}
}

// TestReconnectAfterTerminatedWalsender: a stream cut by the server (the
// walsender terminated) is resumed on a new connection without a clear
// and without losing the change made meanwhile.
func TestReconnectAfterTerminatedWalsender(t *testing.T) {
	leakCheck(t)
	e := newEnv(t, usersSetup, "INSERT INTO users VALUES (1, 'a@x', 'A')")
	c := e.replica()
	cs := []invacache.Cache[string]{c}
	r := start(t, e.config(usersMap))
	cacheAll(t, cs, "control", "user:1")
	e.exec("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1", e.slot)
	e.exec("UPDATE users SET name = 'x' WHERE id = 1")
	waitMissing(t, cs, "user:1")
	eventually(t, 10*time.Second, "a reconnect counted", func() bool { return r.Stats().Reconnects >= 1 })
	if !holds(c, "control") || len(r.Stats().Clears) != 0 {
		t.Fatalf("the reconnect cleared (Clears %v)", r.Stats().Clears)
	}
}

// TestMissingMarkerClears: a slot that exists while Redis has no marker
// (Redis lost it) cannot prove continuity: one clear.
func TestMissingMarkerClears(t *testing.T) {
	leakCheck(t)
	e := newEnv(t, usersSetup)
	c := e.replica()
	cs := []invacache.Cache[string]{c}
	cfg := e.config(usersMap)
	r := start(t, cfg)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	cacheAll(t, cs, "control")
	rdb := goredis.NewClient(&goredis.Options{Addr: e.redis.Addr()})
	defer rdb.Close()
	if n, err := rdb.Del(context.Background(), markerKey(e.channel, e.slot)).Result(); err != nil || n != 1 {
		t.Fatalf("DEL marker = %d, %v; want 1 key deleted", n, err)
	}
	r = start(t, cfg)
	waitMissing(t, cs, "control")
	if got := r.Stats().Clears[ClearNoMarker]; got != 1 {
		t.Errorf("Clears[%q] = %d, want 1", ClearNoMarker, got)
	}
}

// TestIdleAckKeepsOpenTransaction: a watched transaction still open while
// busy unwatched commits move the slot past its first change is not lost,
// even across a relay restart: PostgreSQL sends a transaction by its
// commit position, which is after what was acknowledged.
func TestIdleAckKeepsOpenTransaction(t *testing.T) {
	leakCheck(t)
	e := newEnv(t, usersSetup, "INSERT INTO users VALUES (1, 'a@x', 'A')", "CREATE TABLE busy (id serial PRIMARY KEY, v text)")
	c := e.replica()
	cs := []invacache.Cache[string]{c}
	cfg := e.config(usersMap)
	cfg.StatusInterval = 10 * time.Millisecond
	r := start(t, cfg)
	cacheAll(t, cs, "control", "user:1")
	ctx := context.Background()
	open := connect(t, e.dsn)
	tx, err := open.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "UPDATE users SET name = 'late' WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		e.exec("INSERT INTO busy (v) VALUES ('x')")
	}
	var busyEnd string
	if err := e.db.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&busyEnd); err != nil {
		t.Fatal(err)
	}
	want, _ := pglogrepl.ParseLSN(busyEnd)
	eventually(t, 15*time.Second, "slot acknowledged past the busy commits", func() bool { return e.confirmedFlush() >= want })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r = start(t, cfg)
	waitMissing(t, cs, "user:1")
	if !holds(c, "control") || len(r.Stats().Clears) != 0 {
		t.Fatalf("cleared (Clears %v)", r.Stats().Clears)
	}
}
