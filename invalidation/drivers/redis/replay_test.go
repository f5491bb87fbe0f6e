package redis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
	"github.com/halilbulentorhon/invacache-go/internal/redisserver"
	"github.com/halilbulentorhon/invacache-go/internal/wire"
	"github.com/halilbulentorhon/invacache-go/invalidation"
)

// logRecorder records logged payloads with their positions.
type logRecorder struct {
	recorder
	pmu  sync.Mutex
	pos  []invalidation.LogPos // guarded by pmu
	logd []string              // guarded by pmu
}

func (r *logRecorder) HandleLogMessage(pos invalidation.LogPos, p []byte) {
	r.pmu.Lock()
	r.pos = append(r.pos, pos)
	r.logd = append(r.logd, string(p))
	r.pmu.Unlock()
	r.HandleMessage(p)
}

func (r *logRecorder) positions() []invalidation.LogPos {
	r.pmu.Lock()
	defer r.pmu.Unlock()
	return append([]invalidation.LogPos(nil), r.pos...)
}

type entry struct {
	pos     invalidation.LogPos
	payload string
}

// replayAll runs Replay and collects what it passes to fn.
func replayAll(t testing.TB, d *Driver, after invalidation.LogPos) ([]entry, invalidation.LogPos, error) {
	t.Helper()
	var got []entry
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	last, err := d.Replay(ctx, after, func(pos invalidation.LogPos, p []byte) error {
		got = append(got, entry{pos, string(p)})
		return nil
	})
	return got, last, err
}

func head(t testing.TB, d *Driver) invalidation.LogPos {
	t.Helper()
	p, err := d.LogHead(context.Background())
	if err != nil {
		t.Fatalf("LogHead: %v", err)
	}
	return p
}

func do(t testing.TB, srv *redisserver.Server, args ...string) string {
	t.Helper()
	out, err := srv.Do(args...)
	if err != nil && !errors.Is(err, redisserver.ErrNil) {
		t.Fatalf("%v: %v", args, err)
	}
	return out
}

// Published payloads arrive framed with their log position, in log order,
// and Replay after any of them returns exactly the later ones.
func TestReplayLog(t *testing.T) {
	leakcheck.Check(t)
	srv, d, _ := linked(t, redisserver.Options{}, Config{}, 0)
	r := &logRecorder{}
	subscribe(t, d, r, 0)
	waitUp(t, &r.recorder, 1)
	h0 := head(t, d)

	var want []string
	for i := range 5 {
		batch := []string{fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", i)}
		publish(t, d, batch...)
		want = append(want, batch...)
	}
	waitFor(t, 5*time.Second, "10 logged messages", func() bool { return len(r.positions()) == 10 })
	pos := r.positions()
	for i, p := range pos {
		if p.Epoch != h0.Epoch {
			t.Fatalf("message %d in epoch %q, LogHead said %q", i, p.Epoch, h0.Epoch)
		}
		if i > 0 && p.ID.Compare(pos[i-1].ID) <= 0 {
			t.Fatalf("ids not increasing: %v then %v", pos[i-1], p)
		}
	}
	if h := head(t, d); h != pos[9] {
		t.Errorf("LogHead = %v, want the last published %v", h, pos[9])
	}
	for _, from := range []int{-1, 0, 4, 9} {
		after := h0
		if from >= 0 {
			after = pos[from]
		}
		got, last, err := replayAll(t, d, after)
		if err != nil {
			t.Fatalf("Replay after %v: %v", after, err)
		}
		if len(got) != 9-from {
			t.Fatalf("Replay after #%d: %d entries, want %d", from, len(got), 9-from)
		}
		for i, e := range got {
			if e.pos != pos[from+1+i] || e.payload != want[from+1+i] {
				t.Errorf("Replay after #%d: entry %d = %v %q, want %v %q", from, i, e.pos, e.payload, pos[from+1+i], want[from+1+i])
			}
		}
		if last != pos[9] {
			t.Errorf("Replay returned %v, want %v", last, pos[9])
		}
	}
	if n := do(t, srv, "XLEN", d.streamKey); n != "11" {
		t.Errorf("XLEN = %s, want 11 (the marker and 10 entries)", n)
	}
}

// A backlog longer than one chunk is read in chunks, in order.
func TestReplayChunks(t *testing.T) {
	leakcheck.Check(t)
	_, d, _ := linked(t, redisserver.Options{}, Config{}, 0)
	h0 := head(t, d)
	const n = 3*replayChunk + 7
	for i := 0; i < n; i += 100 {
		var batch []string
		for j := i; j < min(i+100, n); j++ {
			batch = append(batch, strconv.Itoa(j))
		}
		publish(t, d, batch...)
	}
	got, _, err := replayAll(t, d, h0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("replayed %d entries, want %d", len(got), n)
	}
	for i, e := range got {
		if e.payload != strconv.Itoa(i) {
			t.Fatalf("entry %d = %q", i, e.payload)
		}
	}
}

// Every continuity check, each in a state that only it catches: without
// the check Replay would succeed (or deliver a wrong log).
func TestReplayContinuityChecks(t *testing.T) {
	leakcheck.Check(t)
	srv, d, _ := linked(t, redisserver.Options{}, Config{}, 0)
	sk, ek := d.streamKey, d.epochKey
	// setup returns the cursor to replay from after arranging the log.
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, cur invalidation.LogPos, ids []string) invalidation.LogPos
	}{
		{"epoch changed", func(t *testing.T, cur invalidation.LogPos, _ []string) invalidation.LogPos {
			do(t, srv, "SET", ek, "another")
			return cur
		}},
		{"epoch changed, nothing to replay", func(t *testing.T, cur invalidation.LogPos, ids []string) invalidation.LogPos {
			do(t, srv, "SET", ek, "another")
			cur.ID, _ = wire.ParseLogID(ids[len(ids)-1])
			return cur
		}},
		{"epoch key gone", func(t *testing.T, cur invalidation.LogPos, _ []string) invalidation.LogPos {
			do(t, srv, "DEL", ek)
			return cur
		}},
		{"stream gone", func(t *testing.T, cur invalidation.LogPos, _ []string) invalidation.LogPos {
			do(t, srv, "DEL", sk)
			return cur
		}},
		{"entry after the cursor deleted", func(t *testing.T, cur invalidation.LogPos, ids []string) invalidation.LogPos {
			do(t, srv, "XDEL", sk, ids[2])
			return cur
		}},
		{"zero cursor, log trimmed", func(t *testing.T, cur invalidation.LogPos, ids []string) invalidation.LogPos {
			do(t, srv, "XTRIM", sk, "MINID", ids[1])
			cur.ID = invalidation.LogID{}
			return cur
		}},
		{"trimmed past the cursor", func(t *testing.T, cur invalidation.LogPos, ids []string) invalidation.LogPos {
			do(t, srv, "XTRIM", sk, "MINID", ids[2]) // deletes ids[0], ids[1]; cursor at ids[0]
			return cur
		}},
		// Implied by the cursor entry's presence (an entry after the
		// log's last id cannot be in it); kept for its precise message.
		{"log ends before the cursor", func(t *testing.T, cur invalidation.LogPos, ids []string) invalidation.LogPos {
			last, _ := wire.ParseLogID(ids[len(ids)-1])
			cur.ID = invalidation.LogID{Ms: last.Ms + 1000}
			return cur
		}},
		{"cursor entry missing (lost tail)", func(t *testing.T, cur invalidation.LogPos, ids []string) invalidation.LogPos {
			// A promoted replica's log: the same epoch, entries around the
			// cursor but not the cursor itself, nothing recorded deleted.
			do(t, srv, "DEL", sk)
			do(t, srv, "XADD", sk, "100-1", "p", "x")
			do(t, srv, "XADD", sk, "100-3", "p", "y")
			// As many entries added as before, so only the cursor's
			// absence tells.
			do(t, srv, "XSETID", sk, "100-3", "ENTRIESADDED", "1000", "MAXDELETEDID", "0-0")
			cur.ID = invalidation.LogID{Ms: 100, Seq: 2}
			return cur
		}},
		{"entries-added went backwards", func(t *testing.T, cur invalidation.LogPos, ids []string) invalidation.LogPos {
			// The driver saw the full log (Replay notes entries-added);
			// then the log is replaced by a shorter one that still holds
			// the cursor.
			if _, _, err := replayAll(t, d, cur); err != nil {
				t.Fatal(err)
			}
			do(t, srv, "DEL", sk)
			do(t, srv, "XADD", sk, ids[0], "p", "x")
			do(t, srv, "XADD", sk, ids[len(ids)-1], "p", "y")
			return cur
		}},
		{"entry without payload", func(t *testing.T, cur invalidation.LogPos, _ []string) invalidation.LogPos {
			do(t, srv, "XADD", sk, "*", "q", "x")
			return cur
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			do(t, srv, "DEL", sk, ek)
			head(t, d)
			publish(t, d, "p0", "p1", "p2", "p3")
			ids := strings.Fields(do(t, srv, "EVAL", "local r = {} for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do table.insert(r, e[1]) end return table.concat(r, ' ')", "1", sk))
			if len(ids) != 5 {
				t.Fatalf("log ids %q", ids)
			}
			ids = ids[1:] // the marker
			first, _ := wire.ParseLogID(ids[0])
			cur := invalidation.LogPos{Epoch: do(t, srv, "GET", ek), ID: first}
			// The unharmed log replays.
			if got, _, err := replayAll(t, d, cur); err != nil || len(got) != 3 {
				t.Fatalf("before the fault: Replay = %d entries, %v", len(got), err)
			}
			cur = tc.setup(t, cur, ids)
			got, _, err := replayAll(t, d, cur)
			if !errors.Is(err, invalidation.ErrNoContinuity) {
				t.Fatalf("Replay = %d entries, err %v; want ErrNoContinuity", len(got), err)
			}
			t.Logf("%v", err)
			if tc.name != "entry without payload" && len(got) > 0 {
				t.Errorf("Replay passed %d entries before failing the up-front check", len(got))
			}
		})
	}
}

// The epoch changing between two chunks (a restart during the replay)
// fails the replay.
func TestReplayEpochChangesMidway(t *testing.T) {
	leakcheck.Check(t)
	srv, d, _ := linked(t, redisserver.Options{}, Config{}, 0)
	h0 := head(t, d)
	batch := make([]string, replayChunk+1)
	for i := range batch {
		batch[i] = strconv.Itoa(i)
	}
	publish(t, d, batch...)
	n := 0
	_, err := d.Replay(context.Background(), h0, func(invalidation.LogPos, []byte) error {
		if n++; n == 1 {
			do(t, srv, "SET", d.epochKey, "new")
		}
		return nil
	})
	if !errors.Is(err, invalidation.ErrNoContinuity) || n != replayChunk {
		t.Errorf("Replay: %d entries, err %v; want %d entries then ErrNoContinuity", n, err, replayChunk)
	}
}

// fn's error stops the replay at once and is wrapped.
func TestReplayStopsOnCallbackError(t *testing.T) {
	leakcheck.Check(t)
	_, d, _ := linked(t, redisserver.Options{}, Config{}, 0)
	h0 := head(t, d)
	publish(t, d, "a", "b", "c")
	boom := errors.New("boom")
	n := 0
	last, err := d.Replay(context.Background(), h0, func(invalidation.LogPos, []byte) error {
		if n++; n == 2 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || n != 2 || last.ID.Compare(h0.ID) <= 0 {
		t.Errorf("Replay: %d calls, last %v, err %v; want 2 calls and boom", n, last, err)
	}
}

// A Redis restarted without persistence has a new epoch.
func TestReplayNewEpochAfterRestart(t *testing.T) {
	leakcheck.Check(t)
	srv, d, _ := linked(t, redisserver.Options{}, Config{}, 0)
	publish(t, d, "a")
	h1 := head(t, d)
	srv.Kill()
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "LogHead after the restart", func() bool {
		_, err := d.LogHead(context.Background())
		return err == nil
	})
	if h2 := head(t, d); h2.Epoch == h1.Epoch {
		t.Errorf("epoch %q survived a restart without persistence", h2.Epoch)
	}
	if _, _, err := replayAll(t, d, h1); !errors.Is(err, invalidation.ErrNoContinuity) {
		t.Errorf("Replay from before the restart: %v, want ErrNoContinuity", err)
	}
}

// ReplayWindow trims on the ids Redis assigns; the cap is a constant.
func TestReplayWindowTrims(t *testing.T) {
	leakcheck.Check(t)
	// One entry per stream node, so that approximate trimming is exact.
	srv, d, _ := linked(t, redisserver.Options{Args: []string{"--stream-node-max-entries", "1"}}, Config{ReplayWindow: time.Second}, 0)
	h0 := head(t, d)
	publish(t, d, "old")
	time.Sleep(1100 * time.Millisecond) // the window is a duration of Redis's clock
	publish(t, d, "new")
	if n := do(t, srv, "XLEN", d.streamKey); n != "1" {
		t.Errorf("XLEN = %s after the window passed, want 1 (the marker and old trimmed)", n)
	}
	if _, _, err := replayAll(t, d, h0); !errors.Is(err, invalidation.ErrNoContinuity) {
		t.Errorf("Replay from before the trimmed entry: %v, want ErrNoContinuity", err)
	}
}

func TestReplayDisabled(t *testing.T) {
	leakcheck.Check(t)
	srv, d, r := linked(t, redisserver.Options{}, Config{DisableReplay: true}, 0)
	roundTrip(t, d, r, "plain")
	if _, err := d.LogHead(context.Background()); !errors.Is(err, invalidation.ErrReplayDisabled) {
		t.Errorf("LogHead: %v, want ErrReplayDisabled", err)
	}
	if _, err := d.Replay(context.Background(), invalidation.LogPos{}, nil); !errors.Is(err, invalidation.ErrReplayDisabled) {
		t.Errorf("Replay: %v, want ErrReplayDisabled", err)
	}
	if n := do(t, srv, "EXISTS", d.streamKey, d.epochKey); n != "0" {
		t.Errorf("DisableReplay wrote the log's keys (EXISTS = %s)", n)
	}
}

// A user who may publish but not run the log's commands gets an error from
// New naming the refused permission and DisableReplay.
func TestReplayPermissionProbe(t *testing.T) {
	leakcheck.Check(t)
	srv := redisserver.StartT(t, redisserver.Options{Users: []redisserver.User{
		{Name: "pubsub", Password: "pw", Rules: []string{"~*", "&*", "+@pubsub", "+ping", "+hello", "+auth", "+client", "+info"}},
	}})
	cfg := Config{Address: srv.Addr(), Username: "pubsub", Password: "pw", Channel: testChannel(t)}
	_, err := New(cfg)
	if !errors.Is(err, ErrReplayPermission) || !strings.Contains(err.Error(), "DisableReplay") || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("New: %v; want ErrReplayPermission naming the permission and DisableReplay", err)
	}
	t.Log(err)
	cfg.DisableReplay = true
	d := newTestDriver(t, cfg)
	r := &recorder{}
	subscribe(t, d, r, 0)
	waitUp(t, r, 1)
	roundTrip(t, d, r, "k")
}

// A batch split over several script calls, after Redis lost its script
// cache: every payload is logged and published once, in order.
func TestReplayBatchAfterScriptFlush(t *testing.T) {
	leakcheck.Check(t)
	srv, d, _ := linked(t, redisserver.Options{}, Config{}, 0)
	r := &logRecorder{}
	subscribe(t, d, r, 0)
	waitUp(t, &r.recorder, 1)
	h0 := head(t, d)
	do(t, srv, "SCRIPT", "FLUSH")
	var want []string
	for i := range 5 {
		want = append(want, fmt.Sprintf("%d:%s", i, strings.Repeat("x", 60<<10)))
	}
	publish(t, d, want...)
	waitFor(t, 5*time.Second, "5 logged messages", func() bool { return len(r.positions()) == 5 })
	got, _, err := replayAll(t, d, h0)
	if err != nil || len(got) != 5 {
		t.Fatalf("Replay: %d entries, %v", len(got), err)
	}
	for i, e := range got {
		if e.payload != want[i] || e.pos != r.positions()[i] {
			t.Errorf("entry %d: %.8q at %v, want %.8q at %v", i, e.payload, e.pos, want[i], r.positions()[i])
		}
	}
}

// A read of the log that fails fast (a refused dial, a dead connection) may
// pass and is retried; one that timed out, a proven gap, an error reply or a
// done context is not.
func TestReplayRetriesOnlyFastFailures(t *testing.T) {
	live := context.Background()
	done, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		err  error
		want bool
	}{
		{"refused dial", live, &net.OpError{Op: "dial", Err: errors.New("connection refused")}, true},
		{"dead pooled connection", live, io.EOF, true},
		{"timeout", live, fmt.Errorf("redis: replay: %w", context.DeadlineExceeded), false},
		{"net timeout", live, &net.OpError{Op: "read", Err: timeoutErr{}}, false},
		{"gap", live, errGap("trimmed"), false},
		{"error reply", live, goredis.Nil, false},
		{"context done", done, io.EOF, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isTransient(tt.ctx, tt.err); got != tt.want {
				t.Errorf("isTransient(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }
