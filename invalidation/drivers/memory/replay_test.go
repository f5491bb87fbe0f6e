package memory_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
	"github.com/halilbulentorhon/invacache-go/invalidation"
	"github.com/halilbulentorhon/invacache-go/invalidation/drivers/memory"
)

// logRecorder records how payloads arrived: logged (with their position) or
// not.
type logRecorder struct {
	recorder
	lmu    sync.Mutex
	logged []invalidation.LogPos // guarded by lmu
	plain  int                   // guarded by lmu
}

func (r *logRecorder) HandleMessage(p []byte) {
	r.lmu.Lock()
	r.plain++
	r.lmu.Unlock()
	r.recorder.HandleMessage(p)
}

func (r *logRecorder) HandleLogMessage(pos invalidation.LogPos, p []byte) {
	r.lmu.Lock()
	r.logged = append(r.logged, pos)
	r.lmu.Unlock()
	r.recorder.HandleMessage(p)
}

func (r *logRecorder) counts() (logged []invalidation.LogPos, plain int) {
	r.lmu.Lock()
	defer r.lmu.Unlock()
	return append([]invalidation.LogPos(nil), r.logged...), r.plain
}

// replayAll replays after `after` and returns the payloads and positions.
func replayAll(c *memory.Conn, after invalidation.LogPos) ([]string, []invalidation.LogPos, error) {
	var got []string
	var ps []invalidation.LogPos
	_, err := c.Replay(context.Background(), after, func(p invalidation.LogPos, b []byte) error {
		got = append(got, string(b))
		ps = append(ps, p)
		return nil
	})
	return got, ps, err
}

func head(t *testing.T, c *memory.Conn) invalidation.LogPos {
	t.Helper()
	h, err := c.LogHead(context.Background())
	if err != nil {
		t.Fatalf("LogHead: %v", err)
	}
	return h
}

// Every publish is logged: subscribers get HandleLogMessage with increasing
// positions, and Replay returns what came after a position, even payloads a
// fault lost on the live path.
func TestLogDeliveryAndReplay(t *testing.T) {
	leakcheck.Check(t)
	bus := memory.NewBus()
	defer bus.Close()
	a, b := bus.Connect(), bus.Connect()
	rb := &logRecorder{}
	sub, err := b.Subscribe(rb, invalidation.SubscribeOptions{PingInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	waitEvents(t, &rb.recorder, "up")
	start := head(t, b)
	if err := publish(t, a, "1", "2"); err != nil {
		t.Fatal(err)
	}
	b.DropNext(1)
	if err := publish(t, a, "lost", "3"); err != nil {
		t.Fatal(err)
	}
	waitEvents(t, &rb.recorder, "up", "msg:1", "msg:2", "msg:3")
	logged, plain := rb.counts()
	if plain != 0 || len(logged) != 3 {
		t.Fatalf("logged/plain deliveries = %d/%d, want 3/0", len(logged), plain)
	}
	for i := 1; i < len(logged); i++ {
		if logged[i].Epoch != start.Epoch || logged[i].ID.Compare(logged[i-1].ID) <= 0 {
			t.Errorf("positions %v are not increasing in epoch %s", logged, start.Epoch)
		}
	}
	got, ps, err := replayAll(b, start)
	if err != nil || fmt.Sprint(got) != "[1 2 lost 3]" {
		t.Fatalf("Replay(head before) = %v, %v; want [1 2 lost 3], nil", got, err)
	}
	if ps[3] != logged[2] || head(t, b) != logged[2] {
		t.Errorf("replayed/live/head positions of the last entry differ: %v %v %v", ps[3], logged[2], head(t, b))
	}
	got, _, err = replayAll(b, logged[0])
	if err != nil || fmt.Sprint(got) != "[2 lost 3]" {
		t.Errorf("Replay(after 1) = %v, %v; want [2 lost 3], nil", got, err)
	}
	got, _, err = replayAll(b, head(t, b))
	if err != nil || len(got) != 0 {
		t.Errorf("Replay(head) = %v, %v; want nothing, nil", got, err)
	}
}

// Replay proves continuity or fails with ErrNoContinuity: each check has a
// case that fails without it.
func TestReplayContinuity(t *testing.T) {
	tests := []struct {
		name string
		cfg  memory.BusConfig
		// fault runs after start was read and one entry was published; it
		// returns the position to replay after.
		fault func(t *testing.T, bus *memory.Bus, c *memory.Conn, start, first invalidation.LogPos) invalidation.LogPos
	}{
		{"other epoch", memory.BusConfig{}, func(_ *testing.T, _ *memory.Bus, _ *memory.Conn, start, _ invalidation.LogPos) invalidation.LogPos {
			start.Epoch = "not-this-log"
			return start
		}},
		{"restarted", memory.BusConfig{}, func(t *testing.T, bus *memory.Bus, c *memory.Conn, start, _ invalidation.LogPos) invalidation.LogPos {
			bus.Restart()
			_ = publish(t, c, "in the new log")
			return start
		}},
		{"trimmed", memory.BusConfig{}, func(t *testing.T, bus *memory.Bus, c *memory.Conn, start, _ invalidation.LogPos) invalidation.LogPos {
			bus.TrimLog()
			_ = publish(t, c, "after the trim")
			return start
		}},
		{"over the cap", memory.BusConfig{MaxLogEntries: 2}, func(t *testing.T, _ *memory.Bus, c *memory.Conn, start, _ invalidation.LogPos) invalidation.LogPos {
			_ = publish(t, c, "2", "3")
			return start
		}},
		{"past the window", memory.BusConfig{ReplayWindow: 10 * time.Millisecond}, func(t *testing.T, bus *memory.Bus, c *memory.Conn, start, _ invalidation.LogPos) invalidation.LogPos {
			time.Sleep(30 * time.Millisecond) // older than the window
			_ = publish(t, c, "trims the first")
			if n := bus.LogLen(); n != 1 {
				t.Errorf("LogLen = %d after the window, want 1", n)
			}
			return start
		}},
		{"ends before", memory.BusConfig{}, func(_ *testing.T, _ *memory.Bus, _ *memory.Conn, _, first invalidation.LogPos) invalidation.LogPos {
			first.ID.Seq++ // a position the log never reached (a failover lost its tail)
			return first
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakcheck.Check(t)
			bus, err := memory.NewBusWith(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer bus.Close()
			c := bus.Connect()
			start := head(t, c)
			if err := publish(t, c, "1"); err != nil {
				t.Fatal(err)
			}
			first := head(t, c)
			after := tt.fault(t, bus, c, start, first)
			called := false
			_, err = c.Replay(context.Background(), after, func(invalidation.LogPos, []byte) error {
				called = true
				return nil
			})
			if !errors.Is(err, invalidation.ErrNoContinuity) {
				t.Errorf("Replay = %v, want ErrNoContinuity", err)
			}
			if called {
				t.Errorf("Replay passed entries before failing, want none (the break is known up front)")
			}
		})
	}
}

// The log is trimmed ahead of a long replay while it runs (a write storm
// past the cap): Replay reads in chunks without holding the bus (the
// publish does not wait for it) and fails at the next chunk instead of
// skipping the trimmed entries.
func TestReplayTrimmedWhileReplaying(t *testing.T) {
	leakcheck.Check(t)
	bus, err := memory.NewBusWith(memory.BusConfig{MaxLogEntries: 3000})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	c := bus.Connect()
	start := head(t, c)
	storm := func(n int) {
		ps := make([]string, n)
		for i := range ps {
			ps[i] = fmt.Sprint(i)
		}
		if err := publish(t, c, ps...); err != nil {
			t.Fatal(err)
		}
	}
	storm(3000)
	n := 0
	_, err = c.Replay(context.Background(), start, func(invalidation.LogPos, []byte) error {
		n++
		if n == 100 {
			storm(2000) // trims the oldest 2000, ahead of this chunk's end
		}
		return nil
	})
	if !errors.Is(err, invalidation.ErrNoContinuity) || n >= 3000 {
		t.Errorf("Replay = %v after %d entries, want ErrNoContinuity before the end", err, n)
	}
}

// fn's error stops the replay; faults and DisableReplay refuse it.
func TestReplayRefusals(t *testing.T) {
	leakcheck.Check(t)
	bus := memory.NewBus()
	defer bus.Close()
	c := bus.Connect()
	start := head(t, c)
	_ = publish(t, c, "1", "2", "3")
	stop := errors.New("stop here")
	n := 0
	_, err := c.Replay(context.Background(), start, func(invalidation.LogPos, []byte) error {
		n++
		if n == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 2 {
		t.Errorf("Replay = %v after %d entries, want the fn's error after 2", err, n)
	}

	c.FailReplay(2)
	if _, err := c.LogHead(context.Background()); !errors.Is(err, memory.ErrInjected) {
		t.Errorf("LogHead after FailReplay = %v, want ErrInjected", err)
	}
	if _, _, err := replayAll(c, start); !errors.Is(err, memory.ErrInjected) {
		t.Errorf("Replay after FailReplay = %v, want ErrInjected", err)
	}
	if _, _, err := replayAll(c, start); err != nil {
		t.Errorf("Replay after the injected failures = %v, want nil", err)
	}
	c.Disconnect()
	if _, _, err := replayAll(c, start); !errors.Is(err, memory.ErrDisconnected) {
		t.Errorf("Replay while disconnected = %v, want ErrDisconnected", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.LogHead(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("LogHead with a canceled context = %v, want context.Canceled", err)
	}
}

// A Conn with DisableReplay publishes outside the log (peers get
// HandleMessage) and refuses LogHead and Replay; so does every Conn of a
// bus built with DisableReplay.
func TestDisableReplay(t *testing.T) {
	leakcheck.Check(t)
	bus := memory.NewBus()
	defer bus.Close()
	off, on := bus.Connect(), bus.Connect()
	off.DisableReplay()
	r := &logRecorder{}
	sub, err := on.Subscribe(r, invalidation.SubscribeOptions{PingInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	waitEvents(t, &r.recorder, "up")
	_ = publish(t, off, "unlogged")
	_ = publish(t, on, "logged")
	waitEvents(t, &r.recorder, "up", "msg:unlogged", "msg:logged")
	if logged, plain := r.counts(); len(logged) != 1 || plain != 1 {
		t.Errorf("logged/plain = %d/%d, want 1/1", len(logged), plain)
	}
	if n := bus.LogLen(); n != 1 {
		t.Errorf("LogLen = %d, want 1 (the unlogged publish is not in the log)", n)
	}
	if _, err := off.LogHead(context.Background()); !errors.Is(err, invalidation.ErrReplayDisabled) {
		t.Errorf("LogHead = %v, want ErrReplayDisabled", err)
	}
	if _, _, err := replayAll(off, invalidation.LogPos{}); !errors.Is(err, invalidation.ErrReplayDisabled) {
		t.Errorf("Replay = %v, want ErrReplayDisabled", err)
	}

	nolog, err := memory.NewBusWith(memory.BusConfig{DisableReplay: true})
	if err != nil {
		t.Fatal(err)
	}
	defer nolog.Close()
	if _, err := nolog.Connect().LogHead(context.Background()); !errors.Is(err, invalidation.ErrReplayDisabled) {
		t.Errorf("LogHead on a bus without a log = %v, want ErrReplayDisabled", err)
	}
	for _, bad := range []memory.BusConfig{{ReplayWindow: -1}, {MaxLogEntries: -1}} {
		if _, err := memory.NewBusWith(bad); !errors.Is(err, config.ErrInvalidConfig) {
			t.Errorf("NewBusWith(%+v) = %v, want ErrInvalidConfig", bad, err)
		}
	}
}

// A publish outside the log (a Conn with DisableReplay) leaves a mark: a
// catch-up from a cursor before it fails, one from a cursor after it
// passes (issue 18, case 2).
func TestReplayUnloggedPublishLeavesMark(t *testing.T) {
	leakcheck.Check(t)
	bus := memory.NewBus()
	defer bus.Close()
	off, on := bus.Connect(), bus.Connect()
	off.DisableReplay()
	_ = publish(t, on, "a")
	cur := head(t, on)
	_ = publish(t, on, "b")
	_ = publish(t, off, "unlogged")
	_ = publish(t, on, "c")
	if got, _, err := replayAll(on, cur); !errors.Is(err, invalidation.ErrNoContinuity) {
		t.Errorf("Replay over an unlogged publish = %q, %v; want ErrNoContinuity", got, err)
	}
	cur = head(t, on)
	_ = publish(t, on, "d")
	if got, _, err := replayAll(on, cur); err != nil || len(got) != 1 || got[0] != "d" {
		t.Errorf("Replay after the mark = %q, %v; want [d]", got, err)
	}
}
