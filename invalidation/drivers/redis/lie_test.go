package redis

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
	"github.com/halilbulentorhon/invacache-go/internal/redisserver"
	"github.com/halilbulentorhon/invacache-go/internal/wire"
	"github.com/halilbulentorhon/invacache-go/invalidation"
)

// Tests of issue 18: the log must never lie. Each arranges a log that does
// not hold every message a replica missed and checks that the catch-up
// fails with ErrNoContinuity (the engine then clears).

// logIDs returns the ids of the log's entries, marker first.
func logIDs(t testing.TB, srv *redisserver.Server, d *Driver) []string {
	t.Helper()
	return strings.Fields(do(t, srv, "EVAL", "local r = {} for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do table.insert(r, e[1]) end return table.concat(r, ' ')", "1", d.streamKey))
}

// publishN publishes n keys "k0".."k<n-1>", 100 per call.
func publishN(t testing.TB, d *Driver, n int) {
	t.Helper()
	for i := 0; i < n; i += 100 {
		var batch []string
		for j := i; j < min(i+100, n); j++ {
			batch = append(batch, "k"+strconv.Itoa(j))
		}
		publish(t, d, batch...)
	}
}

// Issue case 1: the log is trimmed while a catch-up reads it, past the
// entry the catch-up has reached: the next chunk must not start further on.
func TestReplayTrimDuringCatchUp(t *testing.T) {
	leakcheck.Check(t)
	srv, d, _ := linked(t, redisserver.Options{}, Config{}, 0)
	h0 := head(t, d)
	publishN(t, d, 1000)
	ids := logIDs(t, srv, d)[1:] // without the marker
	if len(ids) != 1000 {
		t.Fatalf("%d entries, want 1000", len(ids))
	}
	n := 0
	_, err := d.Replay(context.Background(), h0, func(invalidation.LogPos, []byte) error {
		if n++; n == 512 {
			do(t, srv, "XTRIM", d.streamKey, "MINID", ids[700])
		}
		return nil
	})
	if !errors.Is(err, invalidation.ErrNoContinuity) {
		t.Fatalf("Replay passed %d entries, err %v; want ErrNoContinuity (188 entries were trimmed unread)", n, err)
	}
	if n > 512 {
		t.Errorf("Replay passed %d entries; want it to stop at the chunk after the trim (512)", n)
	}
	t.Log(err)
}

// Issue case 3: the cursor's own entry is XDELed, then the log is trimmed
// past it: max-deleted-entry-id still names the cursor (trimming does not
// move it), so only the entries themselves tell.
func TestReplayCursorDeletedThenTrimmed(t *testing.T) {
	leakcheck.Check(t)
	srv, d, _ := linked(t, redisserver.Options{}, Config{}, 0)
	head(t, d)
	publish(t, d, "a", "b", "c", "d")
	ids := logIDs(t, srv, d)[1:]
	id, _ := wire.ParseLogID(ids[0])
	cur := invalidation.LogPos{Epoch: do(t, srv, "GET", d.epochKey), ID: id}
	do(t, srv, "XDEL", d.streamKey, ids[0])
	do(t, srv, "XTRIM", d.streamKey, "MINID", ids[2]) // b trimmed, unseen by max-deleted-entry-id
	got, _, err := replayAll(t, d, cur)
	if !errors.Is(err, invalidation.ErrNoContinuity) {
		t.Fatalf("Replay = %d entries (%v), err %v; want ErrNoContinuity", len(got), got, err)
	}
	t.Log(err)
}

// cursorNow returns the log's head as a replica's cursor.
func cursorNow(t testing.TB, d *Driver) invalidation.LogPos {
	t.Helper()
	return head(t, d)
}

// mustGap fails t unless a catch-up from cur fails for lack of continuity.
func mustGap(t testing.TB, d *Driver, cur invalidation.LogPos, why string) {
	t.Helper()
	got, _, err := replayAll(t, d, cur)
	if !errors.Is(err, invalidation.ErrNoContinuity) {
		t.Fatalf("%s: Replay = %d entries %v, err %v; want ErrNoContinuity", why, len(got), got, err)
	}
	t.Logf("%s: %v", why, err)
}

// Issue case 2: a writer with DisableReplay invalidates while the replica
// is away: its message is not in the log, so the catch-up must fail; a
// cursor taken after it catches up again.
func TestReplayUnloggedWriterLeavesMark(t *testing.T) {
	leakcheck.Check(t)
	srv, d, _ := linked(t, redisserver.Options{}, Config{}, 0)
	w := newTestDriver(t, Config{Address: srv.Addr(), Channel: d.Channel(), DisableReplay: true})
	publish(t, d, "a")
	cur := cursorNow(t, d)
	publish(t, d, "b")
	publish(t, w, "unlogged")
	publish(t, d, "c")
	mustGap(t, d, cur, "DisableReplay writer after the cursor")
	if s := w.LogStats(); s.Unlogged != 1 || s.Unmarked != 0 {
		t.Errorf("writer's LogStats = %+v, want 1 unlogged, 0 unmarked", s)
	}
	cur = cursorNow(t, d)
	publish(t, d, "d")
	if got, _, err := replayAll(t, d, cur); err != nil || len(got) != 1 || got[0].payload != "d" {
		t.Errorf("Replay after a cursor taken after the unlogged message = %v, %v; want [d]", got, err)
	}
}

// The operator's logged path: the Redis Function library (invacache.lua)
// logs raw keys like the driver, so a replica away catches up with them.
func TestOperatorFunctionLogs(t *testing.T) {
	leakcheck.Check(t)
	srv, d, _ := linked(t, redisserver.Options{}, Config{}, 0)
	r := &logRecorder{}
	subscribe(t, d, r, 0)
	waitUp(t, &r.recorder, 1)
	do(t, srv, "FUNCTION", "LOAD", "REPLACE", operatorLibrary())
	cur := cursorNow(t, d)
	if n := do(t, srv, "FCALL", "invacache_invalidate", "1", d.Channel(), "user:1", "user:2"); n != "2" {
		t.Fatalf("FCALL = %q, want 2", n)
	}
	waitFor(t, 5*time.Second, "2 logged raw keys", func() bool { return len(r.positions()) == 2 })
	got, _, err := replayAll(t, d, cur)
	if err != nil || len(got) != 2 || got[0].payload != "user:1" || got[1].payload != "user:2" {
		t.Fatalf("Replay = %v, %v; want user:1, user:2", got, err)
	}
	// A raw PUBLISH bypasses the log and cannot leave a mark: documented.
}

// bareCount returns how many payloads arrived outside a frame.
func (r *logRecorder) bareCount() int { return len(r.messages()) - len(r.positions()) }

// Issue cases 5, 6 and 7: when Redis refuses the log write but PUBLISH
// passes, the batch is still delivered (bare, outside the log), the
// unlogged mark moves so a replica away clears, and the writer counts it.
// A log that cannot be used is replaced under a new epoch.
func TestPublishWhenTheLogRefuses(t *testing.T) {
	leakcheck.Check(t)
	for _, tc := range []struct {
		name      string
		opts      redisserver.Options
		user      string
		fault     func(t *testing.T, srv *redisserver.Server, d *Driver)
		undo      func(t *testing.T, srv *redisserver.Server, d *Driver)
		resets    uint64 // want LogResets
		unlogged  bool   // want the payload outside the log
		newEpoch  bool
		republish bool // publish twice more: no duplicates
	}{
		{name: "xadd denied", user: "nox",
			opts:     redisserver.Options{Users: []redisserver.User{{Name: "nox", Password: "pw", Rules: []string{"~*", "&*", "+@all", "-xadd"}}}},
			unlogged: true},
		{name: "out of memory", unlogged: true,
			fault: func(t *testing.T, srv *redisserver.Server, d *Driver) {
				do(t, srv, "SET", "ballast", strings.Repeat("x", 1<<20))
				do(t, srv, "CONFIG", "SET", "maxmemory-policy", "noeviction")
				do(t, srv, "CONFIG", "SET", "maxmemory", "1")
			},
			undo: func(t *testing.T, srv *redisserver.Server, d *Driver) { do(t, srv, "CONFIG", "SET", "maxmemory", "0") }},
		{name: "log key of the wrong type", resets: 1, newEpoch: true,
			fault: func(t *testing.T, srv *redisserver.Server, d *Driver) { do(t, srv, "SET", d.streamKey, "oops") }},
		{name: "epoch key of the wrong type", resets: 1, newEpoch: true,
			fault: func(t *testing.T, srv *redisserver.Server, d *Driver) {
				do(t, srv, "DEL", d.epochKey)
				do(t, srv, "HSET", d.epochKey, "f", "v")
			}},
		{name: "ids exhausted", resets: 1, newEpoch: true,
			fault: func(t *testing.T, srv *redisserver.Server, d *Driver) {
				do(t, srv, "XADD", d.streamKey, "18446744073709551615-18446744073709551615", "p", "x")
			}},
		{name: "max ms id, short window", republish: true,
			fault: func(t *testing.T, srv *redisserver.Server, d *Driver) {
				do(t, srv, "XADD", d.streamKey, "18446744073709551615-0", "p", "x")
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := redisserver.StartT(t, tc.opts)
			cfg := Config{Address: srv.Addr(), Channel: testChannel(t), ReplayWindow: time.Second}
			if tc.user != "" {
				cfg.Username, cfg.Password = tc.user, "pw"
			}
			// The replica's view, as the default user.
			rd := newTestDriver(t, Config{Address: srv.Addr(), Channel: cfg.Channel})
			r := &logRecorder{}
			subscribe(t, rd, r, 0)
			waitUp(t, &r.recorder, 1)
			publish(t, rd, "before")
			cur := cursorNow(t, rd)
			d, err := New(cfg, WithMaxMessageBytes(0))
			if tc.user != "" {
				if err == nil {
					d.Close()
					t.Fatal("New succeeded for a user who may not XADD; want ErrReplayPermission")
				}
				if !errors.Is(err, ErrReplayPermission) || !strings.Contains(err.Error(), "xadd") {
					t.Fatalf("New: %v; want ErrReplayPermission naming xadd", err)
				}
				t.Log(err)
				// NewPublisher does not probe; its publishes go out.
				p, err := NewPublisher(cfg)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = p.Close() })
				d = p.d
			} else if err != nil {
				t.Fatal(err)
			} else {
				t.Cleanup(func() { _ = d.Close() })
			}
			if tc.fault != nil {
				tc.fault(t, srv, d)
			}
			publish(t, d, "k1")
			if tc.undo != nil {
				tc.undo(t, srv, d)
			}
			waitFor(t, 5*time.Second, "k1 delivered", func() bool { return r.has("k1") })
			n := 1
			if tc.republish {
				publish(t, d, "k2")
				publish(t, d, "k3")
				n = 3
				waitFor(t, 5*time.Second, "k3 delivered", func() bool { return r.has("k3") })
			}
			if got := len(r.messages()); got != n+1 {
				t.Errorf("%d messages delivered (%q), want %d (no duplicates)", got, r.messages(), n+1)
			}
			st := d.LogStats()
			if tc.unlogged {
				if r.bareCount() != 1 || st.Unlogged != 1 || st.Unmarked != 0 {
					t.Errorf("bare %d, LogStats %+v; want k1 outside the log, counted, marked", r.bareCount(), st)
				}
			} else if r.bareCount() != 0 || st.Unlogged != 0 {
				t.Errorf("bare %d, LogStats %+v; want k1 logged", r.bareCount(), st)
			}
			if st.LogResets != tc.resets {
				t.Errorf("LogResets = %d, want %d", st.LogResets, tc.resets)
			}
			if tc.unlogged || tc.newEpoch {
				mustGap(t, rd, cur, tc.name)
			}
			if tc.newEpoch {
				if p := r.positions(); p[len(p)-1].Epoch == cur.Epoch {
					t.Errorf("k1 logged in the old epoch %q", cur.Epoch)
				}
			}
		})
	}
}

// Issue case 4: a Redis restarted from an RDB snapshot (or an AOF not
// fsynced at every write) may have lost the log's tail while the epoch key
// came back: the catch-up must fail, and the log gets a new epoch. With
// appendfsync always the history holds and the catch-up passes.
func TestReplayAfterRestartFromSnapshot(t *testing.T) {
	leakcheck.Check(t)
	for _, tc := range []struct {
		name    string
		args    []string
		save    bool // SAVE before the lost write
		catchUp bool
	}{
		{"rdb snapshot", nil, true, false},
		{"aof everysec", []string{"--appendonly", "yes", "--appendfsync", "everysec"}, false, false},
		{"aof always", []string{"--appendonly", "yes", "--appendfsync", "always"}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, d, _ := linked(t, redisserver.Options{Args: tc.args}, Config{}, 0)
			publish(t, d, "a")
			cur := cursorNow(t, d)
			if tc.save {
				do(t, srv, "SAVE")
			}
			publish(t, d, "b") // lost with the tail unless the AOF is fsynced
			srv.Kill()
			if err := srv.Restart(); err != nil {
				t.Fatal(err)
			}
			if !tc.save && !tc.catchUp {
				// An AOF that kept b anyway (everysec had time to fsync):
				// drop it as a crash between two fsyncs would.
				do(t, srv, "XTRIM", d.streamKey, "MAXLEN", "=", "2")
			}
			var err error
			waitFor(t, 10*time.Second, "a replay that reaches Redis", func() bool {
				_, _, err = replayAll(t, d, cur)
				return err == nil || errors.Is(err, invalidation.ErrNoContinuity)
			})
			if tc.catchUp {
				if err != nil {
					t.Fatalf("Replay after a restart with appendfsync always: %v; want a catch-up", err)
				}
				return
			}
			if !errors.Is(err, invalidation.ErrNoContinuity) {
				t.Fatalf("Replay after a restart that may have lost the tail: %v; want ErrNoContinuity", err)
			}
			t.Log(err)
			// A cursor taken now (as a clearing node does) catches up
			// again: the barrier is behind it.
			h := head(t, d)
			publish(t, d, "c")
			if got, _, err := replayAll(t, d, h); err != nil || len(got) != 1 || got[0].payload != "c" {
				t.Errorf("Replay from LogHead after the restart = %v, %v; want [c]", got, err)
			}
			if _, _, err := replayAll(t, d, cur); !errors.Is(err, invalidation.ErrNoContinuity) {
				t.Errorf("second Replay from before the restart: %v; want ErrNoContinuity (the barrier stays)", err)
			}
		})
	}
}

// Issue case 5's cause: the log's bytes are capped (entries can hold many
// keys, so the entry cap does not bound them), within a sixteenth and a
// stream node of MaxLogBytes.
func TestLogBytesCapped(t *testing.T) {
	leakcheck.Check(t)
	const maxb = 64 << 10
	srv, d, _ := linked(t, redisserver.Options{}, Config{MaxLogBytes: maxb}, 0)
	payload := strings.Repeat("x", 1000)
	for range 20 {
		batch := make([]string, 100)
		for i := range batch {
			batch[i] = payload
		}
		publish(t, d, batch...) // 2 MB in all
	}
	held, err := strconv.Atoi(do(t, srv, "EVAL", "local n = 0 for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do n = n + 64 + #(e[2][2] or '') end return n", "1", d.streamKey))
	if err != nil {
		t.Fatal(err)
	}
	if limit := maxb + maxb/16 + 8<<10; held > limit || held < maxb/2 {
		t.Errorf("the log holds %d bytes (with 64 per entry), want between %d and %d", held, maxb/2, limit)
	}
	t.Logf("log holds %d bytes for a cap of %d", held, maxb)
}

// NewPublisher does not connect (it is documented so): on an unreachable
// Redis it must not dial (the old probe blocked for DialTimeout there).
// A publisher whose publishes fail says why when its ctx ends.
func TestPublisherDoesNotConnectAndReportsFailures(t *testing.T) {
	leakcheck.Check(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int32
	var held sync.WaitGroup
	held.Add(1)
	go func() { // a server that accepts and never answers
		defer held.Done()
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() { ln.Close(); held.Wait() })
	p, err := NewPublisher(Config{Address: ln.Addr().String(), Channel: testChannel(t), DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("NewPublisher opened %d connection(s); want none", n)
	}
	p.Close()

	srv := redisserver.StartT(t, redisserver.Options{Users: []redisserver.User{
		{Name: "nopub", Password: "pw", Rules: []string{"~*", "&*", "+@all", "-publish"}},
	}})
	nopub := Config{Address: srv.Addr(), Channel: testChannel(t), Username: "nopub", Password: "pw"}
	if d, err := New(nopub); !errors.Is(err, ErrNoPermission) || !strings.Contains(err.Error(), "publish") {
		if d != nil {
			d.Close()
		}
		t.Errorf("New for a user who may not PUBLISH: %v; want ErrNoPermission naming publish", err)
	}
	p, err = NewPublisher(nopub)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err = p.Invalidate(ctx, "k")
	if err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("Invalidate with PUBLISH denied: %v; want an error naming NOPERM", err)
	}
	if s := p.Stats(); s.Log.PublishErrors == 0 || s.PublishFailures == 0 {
		t.Errorf("Stats = %+v; want the failures counted", s)
	}
	t.Log(err)
}

// The probe never runs the commands it checks: for a user who may not run
// MULTI it must not send them unqueued (SET of the epoch, DEL of the log).
func TestProbeWithoutMulti(t *testing.T) {
	leakcheck.Check(t)
	srv := redisserver.StartT(t, redisserver.Options{Users: []redisserver.User{
		{Name: "nomulti", Password: "pw", Rules: []string{"~*", "&*", "+@all", "-multi"}},
	}})
	cfg := Config{Address: srv.Addr(), Channel: testChannel(t)}
	d := newTestDriver(t, cfg)
	publish(t, d, "a")
	ep, n := do(t, srv, "GET", d.epochKey), do(t, srv, "XLEN", d.streamKey)
	cfg.Username, cfg.Password = "nomulti", "pw"
	newTestDriver(t, cfg)
	if ep2, n2 := do(t, srv, "GET", d.epochKey), do(t, srv, "XLEN", d.streamKey); ep2 != ep || n2 != n {
		t.Errorf("after New for a user without MULTI: epoch %q, %s entries; want %q, %s", ep2, n2, ep, n)
	}
}
