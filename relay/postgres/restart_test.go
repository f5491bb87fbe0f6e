package postgres

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	goredis "github.com/redis/go-redis/v9"

	invacache "github.com/halilbulentorhon/invacache-go"
	redisdriver "github.com/halilbulentorhon/invacache-go/invalidation/drivers/redis"
)

// TestKillAndRestartLosesNothing SIGKILLs a relay process between
// receiving a batch and publishing it, and between publishing and
// acknowledging it, under a stream of single-row updates; a new relay on
// the same slot then invalidates every committed update's key, without a
// clear. The killed relay reports its position every 5ms, so a wrong
// implementation (acknowledging what was received, not published) has the
// time to lose changes before the kill.
func TestKillAndRestartLosesNothing(t *testing.T) {
	for _, point := range []string{"before-publish", "after-publish"} {
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

			// The slot exists before the first update, so the stream holds them all.
			if err := start(t, cfg).stop(t); err != nil {
				t.Fatal(err)
			}
			child := startChild(t, cfg, point)
			db := connect(t, e.dsn)
			wrote := make(chan error, 1)
			t.Cleanup(func() { <-wrote }) // before db closes
			go func() {
				for i := 1; i <= n; i++ {
					if _, err := db.Exec(context.Background(), "UPDATE items SET v = v + 1 WHERE id = $1", i); err != nil {
						wrote <- err
						return
					}
				}
				wrote <- nil
			}()
			child.killAtHook(t)
			second := start(t, cfg)
			if err := <-wrote; err != nil {
				wrote <- nil
				t.Fatal(err)
			}
			wrote <- nil // for the cleanup
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

// childEnv names the variables a child relay process reads (see runChild).
const childEnv = "RELAY_TEST_CHILD"

// child is a relay running in a child process (this test binary).
type child struct {
	cmd    *exec.Cmd
	stdout *bufio.Reader
}

// startChild runs a relay for cfg in a child process that, at its first
// batch, stops at the hook point (before or after publishing), prints
// "HOOK" and blocks, to be SIGKILLed there while its receiving loop goes
// on.
func startChild(t *testing.T, cfg Config, point string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+point, "RELAY_TEST_DSN="+cfg.Postgres,
		"RELAY_TEST_REDIS="+cfg.Redis.Address, "RELAY_TEST_CHANNEL="+cfg.Redis.Channel,
		"RELAY_TEST_SLOT="+cfg.Slot, "RELAY_TEST_MAP="+cfg.Mappings[0].String())
	if testing.Verbose() {
		cmd.Env = append(cmd.Env, "RELAY_TEST_LOG=1")
	}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return &child{cmd: cmd, stdout: bufio.NewReader(out)}
}

// killAtHook waits until the child reached its hook point and SIGKILLs it.
func (c *child) killAtHook(t *testing.T) {
	t.Helper()
	line := make(chan string, 1)
	go func() {
		for {
			s, err := c.stdout.ReadString('\n')
			if err != nil || strings.HasPrefix(s, "HOOK") {
				line <- s
				return
			}
		}
	}()
	select {
	case s := <-line:
		if !strings.HasPrefix(s, "HOOK") {
			t.Fatalf("the child relay exited before its hook point (output %q)", s)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the child relay did not reach its hook point within 30s")
	}
	time.Sleep(50 * time.Millisecond) // status every 5ms: a wrong relay acknowledges now
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = c.cmd.Wait()
}

// runChild is the child process of startChild.
func runChild(point string) {
	m, err := ParseMapping(os.Getenv("RELAY_TEST_MAP"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var calls atomic.Int32
	stopHere := func() {
		if calls.Add(1) == 1 {
			fmt.Println("HOOK")
			select {} // until SIGKILL
		}
	}
	var logger *slog.Logger
	if os.Getenv("RELAY_TEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil)).With("child", point)
	}
	h := &hooks{}
	if point == "before-publish" {
		h.beforePublish = stopHere
	} else {
		h.afterPublish = stopHere
	}
	r, err := New(Config{Postgres: os.Getenv("RELAY_TEST_DSN"),
		Redis: redisdriver.Config{Address: os.Getenv("RELAY_TEST_REDIS"), Channel: os.Getenv("RELAY_TEST_CHANNEL")},
		Slot:  os.Getenv("RELAY_TEST_SLOT"), Publication: "relay_pub", Mappings: []Mapping{m},
		StatusInterval: 5 * time.Millisecond, hooks: h, Logger: logger})
	if err == nil {
		err = r.Run(context.Background())
	}
	fmt.Fprintln(os.Stderr, "child relay:", err)
	os.Exit(1)
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
	// The walsender of the stopped relay exits on its own schedule.
	eventually(t, 10*time.Second, "slot dropped", func() bool {
		_, err := e.db.Exec(context.Background(), "SELECT pg_drop_replication_slot($1)", e.slot)
		return err == nil
	})
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
	want := e.insertLSN()
	eventually(t, 15*time.Second, "confirmed_flush_lsn ≥ "+want.String(), func() bool { return e.confirmedFlush() >= want })
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
	e.exec("UPDATE users SET name = 'down' WHERE id = 1")
	after := e.insertLSN()            // the commit's end
	e.waitSent(after, 10*time.Second) // the walsender sent the change to the relay...
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

// insertLSN is the server's WAL insert position: the end of the last
// record written (pg_current_wal_lsn, the write position, lags it).
func (e *env) insertLSN() pglogrepl.LSN {
	e.t.Helper()
	var s string
	if err := e.db.QueryRow(context.Background(), "SELECT pg_current_wal_insert_lsn()::text").Scan(&s); err != nil {
		e.t.Fatal(err)
	}
	l, _ := pglogrepl.ParseLSN(s)
	return l
}

// waitSent waits until the (one) walsender has sent the WAL up to lsn.
func (e *env) waitSent(lsn pglogrepl.LSN, within time.Duration) {
	e.t.Helper()
	eventually(e.t, within, "walsender sent up to "+lsn.String(), func() bool {
		var sent *string
		if e.db.QueryRow(context.Background(), "SELECT sent_lsn::text FROM pg_stat_replication LIMIT 1").Scan(&sent) != nil || sent == nil {
			return false
		}
		l, _ := pglogrepl.ParseLSN(*sent)
		return l >= lsn
	})
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
	other := startCluster(t, "wal_level=replica")
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
	want := e.insertLSN()
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

// TestLostSlotClearsAndContinues: a slot PostgreSQL invalidated because
// max_slot_wal_keep_size removed WAL it needed (wal_status "lost") is
// dropped and created again at the next start, with one clear, and the
// relay streams again.
func TestLostSlotClearsAndContinues(t *testing.T) {
	leakCheck(t)
	e := newEnvOn(t, startCluster(t, "max_slot_wal_keep_size=1MB"), usersSetup, "INSERT INTO users VALUES (1, 'a@x', 'A')")
	c := e.replica()
	cs := []invacache.Cache[string]{c}
	cfg := e.config(usersMap)
	if err := start(t, cfg).stop(t); err != nil { // creates the slot and the marker
		t.Fatal(err)
	}
	for range 3 { // WAL beyond max_slot_wal_keep_size, then a checkpoint invalidates the slot
		e.exec("INSERT INTO users SELECT g, 'x' || g, 'n' FROM generate_series(100, 200) g ON CONFLICT DO NOTHING")
		e.exec("SELECT pg_switch_wal()")
	}
	e.exec("CHECKPOINT")
	var status string
	if err := e.db.QueryRow(context.Background(), "SELECT wal_status FROM pg_replication_slots WHERE slot_name = $1", e.slot).Scan(&status); err != nil || status != "lost" {
		t.Fatalf("wal_status = %q (%v), want lost: the test could not invalidate the slot", status, err)
	}
	cacheAll(t, cs, "control", "user:1")
	r := start(t, cfg)
	waitMissing(t, cs, "control")
	if got := r.Stats().Clears[ClearSlotLost]; got != 1 {
		t.Errorf("Clears[%q] = %d, want 1", ClearSlotLost, got)
	}
	cacheAll(t, cs, "user:1")
	e.exec("UPDATE users SET name = 'after' WHERE id = 1")
	waitMissing(t, cs, "user:1")
}
