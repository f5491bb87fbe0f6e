package engine_test

import (
	"errors"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/engine"
	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
	"github.com/halilbulentorhon/invacache-go/invalidation"
	"github.com/halilbulentorhon/invacache-go/invalidation/drivers/memory"
)

const peer = 0xbeef // a peer's origin id in scripted envelopes

// The first link-up clears and starts the cursor at the log's head: a
// resubscribe replays from there, not from the start of the log.
func TestCursorStartsAtLogHead(t *testing.T) {
	leakcheck.Check(t)
	tg := newTarget()
	e, d := scripted(t, engine.Config{}, pos(10), tg)
	wantClears(t, e, map[string]uint64{engine.ClearFirstSubscribe: 1})
	d.handler().HandleLinkUp()
	if got, want := d.replayCalls(), []invalidation.LogPos{pos(10)}; !slices.Equal(got, want) {
		t.Errorf("Replay called after %v, want %v", got, want)
	}
	s := e.Stats()
	if s.CatchUps != 1 || s.ClearsOnGap != 1 || s.Gaps != 2 {
		t.Errorf("catchUps/clearsOnGap/gaps = %d/%d/%d, want 1/1/2", s.CatchUps, s.ClearsOnGap, s.Gaps)
	}
	if tg.clearCount() != 1 {
		t.Errorf("InvalidateAll called %d times, want 1 (the first subscribe)", tg.clearCount())
	}
}

// A live logged message moves the cursor forward only: one at or before the
// cursor (published before the head was read, still in flight) is applied
// but leaves the cursor where it is.
func TestLiveMessagesMoveCursorForwardOnly(t *testing.T) {
	tests := []struct {
		name string
		live []uint64 // ids of live messages, in order
		want uint64   // the cursor the next replay starts after
	}{
		{"before the head", []uint64{8}, 10},
		{"after the head", []uint64{12}, 12},
		{"in flight then new", []uint64{9, 10, 11}, 11},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakcheck.Check(t)
			tg := newTarget()
			e, d := scripted(t, engine.Config{}, pos(10), tg)
			h := d.handler()
			for i, id := range tt.live {
				h.HandleLogMessage(pos(id), env(peer, uint64(i+1), "k"))
			}
			if got := tg.count("k"); got != len(tt.live) {
				t.Errorf("k invalidated %d times, want %d (every live message applies)", got, len(tt.live))
			}
			h.HandleLinkUp()
			if got := d.replayCalls(); len(got) != 1 || got[0] != pos(tt.want) {
				t.Errorf("Replay called after %v, want [%v]", got, pos(tt.want))
			}
			wantClears(t, e, map[string]uint64{engine.ClearFirstSubscribe: 1})
		})
	}
}

// A sequence jump replays from the cursor as it was before the message that
// revealed the jump: the lost entries are before it.
func TestSequenceJumpReplaysFromBeforeTheMessage(t *testing.T) {
	leakcheck.Check(t)
	tg := newTarget()
	e, d := scripted(t, engine.Config{}, pos(10), tg)
	d.set(func(d *scriptDriver) {
		d.entries = []scriptEntry{{pos(12), env(peer, 2, "lost")}, {pos(13), env(peer, 3, "next")}}
	})
	h := d.handler()
	h.HandleLogMessage(pos(11), env(peer, 1, "first"))
	h.HandleLogMessage(pos(13), env(peer, 3, "next")) // seq 2 (id 12) was lost
	if got := d.replayCalls(); len(got) != 1 || got[0] != pos(11) {
		t.Fatalf("Replay called after %v, want [%v]", got, pos(11))
	}
	if tg.count("lost") != 1 {
		t.Errorf("the lost key was invalidated %d times, want 1 (replayed)", tg.count("lost"))
	}
	s := e.Stats()
	if s.CatchUps != 1 || s.KeysReplayed != 2 {
		t.Errorf("catchUps/keysReplayed = %d/%d, want 1/2", s.CatchUps, s.KeysReplayed)
	}
	wantClears(t, e, map[string]uint64{engine.ClearFirstSubscribe: 1})
	// The replay moved the cursor to its end: the next replay starts there.
	h.HandleLinkUp()
	if got := d.replayCalls(); len(got) != 2 || got[1] != pos(13) {
		t.Errorf("second Replay after %v, want %v", got[1:], pos(13))
	}
}

// A live log id that does not increase is a gap that clears; so is a
// message of another epoch than the cursor's (the log was recreated), whose
// replay cannot prove continuity.
func TestLiveLogChecks(t *testing.T) {
	tests := []struct {
		name     string
		live     []invalidation.LogPos
		replay   error // what the scripted Replay returns
		want     map[string]uint64
		catchUps uint64
	}{
		{"increasing", []invalidation.LogPos{pos(11), pos(12)}, nil,
			map[string]uint64{engine.ClearFirstSubscribe: 1}, 0},
		{"id backwards", []invalidation.LogPos{pos(12), pos(11)}, nil,
			map[string]uint64{engine.ClearFirstSubscribe: 1, engine.ClearIDBackwards: 1}, 0},
		{"id repeated", []invalidation.LogPos{pos(12), pos(12)}, nil,
			map[string]uint64{engine.ClearFirstSubscribe: 1, engine.ClearIDBackwards: 1}, 0},
		{"epoch changed", []invalidation.LogPos{pos(11), pos(12, "E2")}, invalidation.ErrNoContinuity,
			map[string]uint64{engine.ClearFirstSubscribe: 1, engine.ClearNoContinuity: 1}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakcheck.Check(t)
			tg := newTarget()
			e, d := scripted(t, engine.Config{}, pos(10), tg)
			d.set(func(d *scriptDriver) { d.replayErr = tt.replay })
			h := d.handler()
			for i, p := range tt.live {
				h.HandleLogMessage(p, env(peer, uint64(i+1), "k"))
			}
			wantClears(t, e, tt.want)
			if got := e.Stats().CatchUps; got != tt.catchUps {
				t.Errorf("CatchUps = %d, want %d", got, tt.catchUps)
			}
			if got := tg.count("k"); got != len(tt.live) {
				t.Errorf("k invalidated %d times, want %d (the message is applied after the gap)", got, len(tt.live))
			}
		})
	}
}

// A replay that cannot be trusted entry by entry stops at the bad entry and
// clears: an id not after the previous one, another epoch, a malformed or
// unreadable envelope. Entries after it are not applied.
func TestReplayedEntryChecks(t *testing.T) {
	good := env(peer, 1, "a")
	tests := []struct {
		name    string
		entries []scriptEntry
		reason  string // "" = caught up
	}{
		{"in order", []scriptEntry{{pos(11), good}, {pos(12), env(peer, 2, "b")}}, ""},
		{"id backwards", []scriptEntry{{pos(12), good}, {pos(11), env(peer, 2, "b")}}, engine.ClearIDBackwards},
		{"id repeated", []scriptEntry{{pos(11), good}, {pos(11), env(peer, 2, "b")}}, engine.ClearIDBackwards},
		{"at the cursor", []scriptEntry{{pos(10), env(peer, 2, "b")}}, engine.ClearIDBackwards},
		{"other epoch", []scriptEntry{{pos(11), good}, {pos(12, "E2"), env(peer, 2, "b")}}, engine.ClearNoContinuity},
		{"malformed", []scriptEntry{{pos(11), good}, {pos(12), []byte("\x00ivc1 not hex")}}, engine.ClearMalformed},
		{"unknown version", []scriptEntry{{pos(11), good}, {pos(12), []byte("\x00ivc2 0000000000000001 1 X")}}, engine.ClearUnknownVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakcheck.Check(t)
			tg := newTarget()
			e, d := scripted(t, engine.Config{}, pos(10), tg)
			// An entry after the bad one must never be applied.
			entries := append(slices.Clone(tt.entries), scriptEntry{pos(20), env(peer+1, 1, "after-bad")})
			d.set(func(d *scriptDriver) { d.entries, d.head = entries, pos(20) })
			d.handler().HandleLinkUp()
			want := map[string]uint64{engine.ClearFirstSubscribe: 1}
			wantCatchUps := uint64(1)
			if tt.reason != "" {
				want[tt.reason]++
				wantCatchUps = 0
				if tg.count("after-bad") != 0 {
					t.Errorf("an entry after the bad one was applied")
				}
			}
			wantClears(t, e, want)
			if got := e.Stats().CatchUps; got != wantCatchUps {
				t.Errorf("CatchUps = %d, want %d", got, wantCatchUps)
			}
		})
	}
}

// Replay's own verdict: continuity not proven, the log disabled, or any
// other error clears, each under its reason; a missing cursor clears
// without asking the log.
func TestReplayErrorsClear(t *testing.T) {
	tests := []struct {
		name      string
		headErr   error // LogHead's error at the first subscribe
		replayErr error
		reason    string
		replays   int
	}{
		{"no continuity", nil, invalidation.ErrNoContinuity, engine.ClearNoContinuity, 1},
		{"disabled", nil, invalidation.ErrReplayDisabled, engine.ClearReplayDisabled, 1},
		{"network", nil, errors.New("connection refused"), engine.ClearReplayError, 1},
		{"no cursor", errors.New("connection refused"), nil, engine.ClearNoCursor, 0},
		{"head disabled", invalidation.ErrReplayDisabled, nil, engine.ClearReplayDisabled, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakcheck.Check(t)
			tg := newTarget()
			d := &scriptDriver{head: pos(10), headErr: tt.headErr, replayErr: tt.replayErr}
			e, err := engine.New(engine.Config{Driver: d}, tg)
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			h := d.handler()
			h.HandleLinkUp()
			d.set(func(d *scriptDriver) { d.headErr = nil })
			h.HandleLinkUp()
			wantClears(t, e, map[string]uint64{engine.ClearFirstSubscribe: 1, tt.reason: 1})
			if got := len(d.replayCalls()); got != tt.replays {
				t.Errorf("Replay called %d times, want %d", got, tt.replays)
			}
			if tg.clearCount() != 2 {
				t.Errorf("InvalidateAll called %d times, want 2", tg.clearCount())
			}
			// The clear read the head: the next gap catches up from it.
			d.set(func(d *scriptDriver) { d.replayErr = nil })
			h.HandleLinkUp()
			if got := e.Stats().CatchUps; got != 1 {
				t.Errorf("CatchUps after the head was read = %d, want 1", got)
			}
		})
	}
}

// Without a cursor (the head could not be read) the node adopts the first
// live logged message's position: no gap since its clear means it missed
// nothing before it.
func TestCursorAdoptedFromLiveMessage(t *testing.T) {
	leakcheck.Check(t)
	tg := newTarget()
	d := &scriptDriver{headErr: errors.New("timeout")}
	e, err := engine.New(engine.Config{Driver: d}, tg)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	h := d.handler()
	h.HandleLinkUp()
	h.HandleLogMessage(pos(30), env(peer, 1, "k"))
	h.HandleLinkUp()
	if got := d.replayCalls(); len(got) != 1 || got[0] != pos(30) {
		t.Errorf("Replay called after %v, want [%v]", got, pos(30))
	}
	if s := e.Stats(); s.CatchUps != 1 {
		t.Errorf("CatchUps = %d, want 1", s.CatchUps)
	}
}

// A peer's envelope that arrives outside the log (its driver does not log),
// or a raw key (an operator's redis-cli PUBLISH), makes the log incomplete:
// the next gap clears; the clear resets the mark.
func TestUnloggedPeerClears(t *testing.T) {
	leakcheck.Check(t)
	tg := newTarget()
	e, d := scripted(t, engine.Config{}, pos(10), tg)
	h := d.handler()
	h.HandleMessage([]byte("raw-key"))
	h.HandleLinkUp()
	wantClears(t, e, map[string]uint64{engine.ClearFirstSubscribe: 1, engine.ClearUnloggedPeer: 1})
	h.HandleLinkUp() // the clear reset the mark
	if got := e.Stats().CatchUps; got != 1 {
		t.Errorf("CatchUps after the clear = %d, want 1", got)
	}
	h.HandleMessage(env(peer, 1, "k"))
	h.HandleLinkUp()
	wantClears(t, e, map[string]uint64{engine.ClearFirstSubscribe: 1, engine.ClearUnloggedPeer: 2})
	h.HandleLinkUp()
	if got := e.Stats().CatchUps; got != 2 {
		t.Errorf("CatchUps after the second clear = %d, want 2", got)
	}
}

// With GapStrategy none a failed catch-up does not clear, and a successful
// one still applies what was missed.
func TestGapNoneStillReplays(t *testing.T) {
	leakcheck.Check(t)
	tg := newTarget()
	e, d := scripted(t, engine.Config{GapStrategy: config.GapNone}, pos(10), tg)
	d.set(func(d *scriptDriver) { d.entries = []scriptEntry{{pos(11), env(peer, 1, "missed")}} })
	d.handler().HandleLinkUp()
	if tg.count("missed") != 1 {
		t.Errorf("missed key invalidated %d times, want 1", tg.count("missed"))
	}
	d.set(func(d *scriptDriver) { d.entries, d.replayErr = nil, invalidation.ErrNoContinuity })
	d.handler().HandleLinkUp()
	if tg.clearCount() != 0 {
		t.Errorf("InvalidateAll called %d times with GapStrategy none, want 0", tg.clearCount())
	}
	wantClears(t, e, nil)
	if s := e.Stats(); s.CatchUps != 1 || s.Gaps != 3 {
		t.Errorf("catchUps/gaps = %d/%d, want 1/3", s.CatchUps, s.Gaps)
	}
}

// The node does not serve between a gap and the end of its catch-up, even
// with MaxStaleness 0 (always serving otherwise).
func TestNotServingDuringCatchUp(t *testing.T) {
	leakcheck.Check(t)
	tg := newTarget()
	e, d := scripted(t, engine.Config{}, pos(10), tg)
	if !e.Serving() {
		t.Fatal("not serving after the first link-up")
	}
	entered, release := make(chan struct{}), make(chan struct{})
	d.set(func(d *scriptDriver) {
		d.entered, d.release = entered, release
		d.entries = []scriptEntry{{pos(11), env(peer, 1, "missed")}}
	})
	done := make(chan struct{})
	go func() { // the subscription goroutine
		defer close(done)
		d.handler().HandleLinkUp()
	}()
	<-entered
	if e.Serving() {
		t.Errorf("serving while the catch-up runs, want not serving")
	}
	close(release)
	<-done
	if !e.Serving() {
		t.Errorf("not serving after the catch-up, want serving")
	}
	if tg.count("missed") != 1 {
		t.Errorf("missed key invalidated %d times, want 1", tg.count("missed"))
	}
}

// countTarget counts invalidations without keeping keys, so a big replay
// measures the engine's memory, not the fake cache's.
type countTarget struct{ keys, clears int }

func (c *countTarget) InvalidateKeys(keys []string) { c.keys += len(keys) }
func (c *countTarget) InvalidateAll()               { c.clears++ }

// A backlog of 1M entries (100k under -race) is applied as it is read: the
// engine's heap does not grow with the backlog.
func TestBigBacklogBoundedMemory(t *testing.T) {
	leakcheck.Check(t)
	n := 1_000_000
	if raceEnabled || testing.Short() {
		n = 100_000
	}
	const limit = 16 << 20 // far below what holding the backlog would take
	tg := &countTarget{}
	e, d := scripted(t, engine.Config{}, pos(0), tg)
	var base, peak uint64
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	d.set(func(d *scriptDriver) {
		d.gen = func(after invalidation.LogPos, fn func(invalidation.LogPos, []byte) error) error {
			base = heap()
			var buf []byte
			for i := 1; i <= n; i++ {
				buf = append(buf[:0], env(peer, uint64(i), "user:"+string(rune('a'+i%26))+"-key-of-some-length")...)
				if err := fn(pos(uint64(i)), buf); err != nil {
					return err
				}
				if i%(n/10) == 0 {
					peak = max(peak, heap())
				}
			}
			return nil
		}
	})
	d.handler().HandleLinkUp()
	s := e.Stats()
	if s.CatchUps != 1 || s.KeysReplayed != uint64(n) || tg.keys != n {
		t.Fatalf("catchUps/keysReplayed/applied = %d/%d/%d, want 1/%d/%d", s.CatchUps, s.KeysReplayed, tg.keys, n, n)
	}
	if peak > base && peak-base > limit {
		t.Errorf("heap grew by %d bytes while replaying %d entries, want under %d", peak-base, n, limit)
	}
	t.Logf("%d entries replayed; heap %d bytes before, peak %d", n, base, peak)
}

// Over the in-process bus: a node that was disconnected while a peer wrote
// catches up from the bus's log on reconnect, without clearing.
func TestCatchUpOnReconnect(t *testing.T) {
	leakcheck.Check(t)
	bus := memory.NewBus()
	defer bus.Close()
	a := newNode(t, bus, engine.Config{})
	b := newNode(t, bus, engine.Config{})
	b.conn.Disconnect()
	waitFor(t, "b's link down", func() bool { return !b.e.Stats().LinkUp })
	missed := keysN("missed", 50)
	for _, k := range missed {
		if err := a.e.BroadcastDelete(k); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, a.e)
	b.conn.Reconnect()
	waitFor(t, "b's catch-up", func() bool { return b.e.Stats().CatchUps == 1 })
	for _, k := range missed {
		if b.t.count(k) != 1 {
			t.Fatalf("missed key %s invalidated %d times, want 1", k, b.t.count(k))
		}
	}
	if s := b.e.Stats(); s.KeysReplayed != uint64(len(missed)) || s.ClearsOnGap != 1 || b.t.clearCount() != 1 {
		t.Errorf("keysReplayed/clearsOnGap/clears = %d/%d/%d, want %d/1/1 (the first subscribe only)", s.KeysReplayed, s.ClearsOnGap, b.t.clearCount(), len(missed))
	}
	wantClears(t, b.e, map[string]uint64{engine.ClearFirstSubscribe: 1})
}

// Over the in-process bus: a message lost on a live link (a sequence jump)
// is replayed; a lapse of MaxStaleness with a loss catches up too.
func TestCatchUpOnLostMessageAndLapse(t *testing.T) {
	leakcheck.Check(t)
	bus := memory.NewBus()
	defer bus.Close()
	a := newNode(t, bus, engine.Config{})
	b := newNode(t, bus, engine.Config{MaxStaleness: 200 * time.Millisecond})
	send := func(k string) {
		t.Helper()
		if err := a.e.BroadcastDelete(k); err != nil {
			t.Fatal(err)
		}
		flush(t, a.e)
	}
	send("baseline")
	waitFor(t, "baseline", func() bool { return b.t.count("baseline") == 1 })
	b.conn.DropNext(1)
	send("lost")
	send("after")
	waitFor(t, "the jump's catch-up", func() bool { return b.e.Stats().CatchUps == 1 })
	if b.t.count("lost") != 1 {
		t.Errorf("lost key invalidated %d times, want 1 (replayed)", b.t.count("lost"))
	}

	b.conn.Stall()
	waitFor(t, "not serving after a stall", func() bool { return !b.e.Serving() })
	b.conn.DropNext(1)
	send("lost-in-lapse")
	b.conn.Unstall()
	waitFor(t, "serving again", b.e.Serving)
	if b.t.count("lost-in-lapse") != 1 {
		t.Errorf("key lost during the lapse invalidated %d times, want 1 (replayed)", b.t.count("lost-in-lapse"))
	}
	if s := b.e.Stats(); s.CatchUps != 2 || b.t.clearCount() != 1 {
		t.Errorf("catchUps/clears = %d/%d, want 2/1", s.CatchUps, b.t.clearCount())
	}
	wantClears(t, b.e, map[string]uint64{engine.ClearFirstSubscribe: 1})
}

// Over the in-process bus: each way the log loses continuity clears.
func TestNoContinuityClears(t *testing.T) {
	tests := []struct {
		name   string
		cfg    memory.BusConfig
		fault  func(bus *memory.Bus, b *node)
		reason string
	}{
		{"trimmed past the cursor", memory.BusConfig{}, func(bus *memory.Bus, _ *node) { bus.TrimLog() }, engine.ClearNoContinuity},
		{"new epoch", memory.BusConfig{}, func(bus *memory.Bus, _ *node) { bus.Restart() }, engine.ClearNoContinuity},
		{"over the cap", memory.BusConfig{MaxLogEntries: 3}, func(*memory.Bus, *node) {}, engine.ClearNoContinuity},
		{"log unreadable", memory.BusConfig{}, func(_ *memory.Bus, b *node) { b.conn.FailReplay(1) }, engine.ClearReplayError},
		{"replay disabled", memory.BusConfig{DisableReplay: true}, func(*memory.Bus, *node) {}, engine.ClearReplayDisabled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakcheck.Check(t)
			bus, err := memory.NewBusWith(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer bus.Close()
			a := newNode(t, bus, engine.Config{})
			b := newNode(t, bus, engine.Config{})
			b.conn.Disconnect()
			waitFor(t, "b's link down", func() bool { return !b.e.Stats().LinkUp })
			for _, k := range keysN("missed", 5) {
				_ = a.e.BroadcastDelete(k)
				flush(t, a.e) // one entry each
			}
			tt.fault(bus, b)
			_ = a.e.BroadcastDelete("after-fault")
			flush(t, a.e)
			b.conn.Reconnect()
			waitFor(t, "b's second clear", func() bool { return b.t.clearCount() == 2 })
			wantClears(t, b.e, map[string]uint64{engine.ClearFirstSubscribe: 1, tt.reason: 1})
			if got := b.e.Stats().CatchUps; got != 0 {
				t.Errorf("CatchUps = %d, want 0", got)
			}
		})
	}
}

// A catch-up counts only if the log holds every message the node may have
// missed, per sender: a sender's sequence numbers must continue through the
// replayed entries from the last one the node applied. A log that proves its
// own continuity can still lack a message: a cluster master restarted empty
// that acknowledged a publish before it learned it lost its slot, then
// resynced from the new master, dropping it. The baselines survive a
// resubscribe that caught up, so a loss around the resubscribe shows too.
func TestCatchUpNeedsEveryMissingSequence(t *testing.T) {
	tests := []struct {
		name    string
		entries []scriptEntry // the log after the cursor
		// then, after "first" (seq 1, id 11) was applied live:
		linkUp    bool          // a resubscribe
		live      *scriptEntry  // a live message
		wantClear bool          // else caught up
		after     []scriptEntry // live messages after that, which must not be gaps
	}{
		{
			name:      "jump, log lacks the missing seq",
			entries:   []scriptEntry{{pos(13), env(peer, 3, "next")}},
			live:      &scriptEntry{pos(13), env(peer, 3, "next")},
			wantClear: true,
		},
		{
			name:      "resubscribe, log lacks the missing seq",
			entries:   []scriptEntry{{pos(12), env(peer, 3, "next")}},
			linkUp:    true,
			wantClear: true,
		},
		{
			name:    "resubscribe, log holds every seq",
			entries: []scriptEntry{{pos(12), env(peer, 2, "a")}, {pos(13), env(peer, 3, "b")}},
			linkUp:  true,
			after:   []scriptEntry{{pos(13), env(peer, 3, "b")}, {pos(14), env(peer, 4, "c")}},
		},
		{
			name:    "jump, log holds the missing seq",
			entries: []scriptEntry{{pos(12), env(peer, 2, "lost")}, {pos(13), env(peer, 3, "next")}},
			live:    &scriptEntry{pos(13), env(peer, 3, "next")},
			after:   []scriptEntry{{pos(14), env(peer, 4, "c")}},
		},
		{
			name:    "resubscribe, a new sender starts past 1",
			entries: []scriptEntry{{pos(12), env(peer+1, 7, "x")}},
			linkUp:  true,
			after:   []scriptEntry{{pos(13), env(peer+1, 8, "y")}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakcheck.Check(t)
			tg := newTarget()
			e, d := scripted(t, engine.Config{}, pos(10), tg)
			h := d.handler()
			h.HandleLogMessage(pos(11), env(peer, 1, "first"))
			d.set(func(d *scriptDriver) { d.entries = tt.entries })
			if tt.linkUp {
				h.HandleLinkUp()
			}
			if tt.live != nil {
				h.HandleLogMessage(tt.live.pos, tt.live.payload)
			}
			want := map[string]uint64{engine.ClearFirstSubscribe: 1}
			wantCatchUps := uint64(1)
			if tt.wantClear {
				want[engine.ClearNoContinuity] = 1
				wantCatchUps = 0
			}
			wantClears(t, e, want)
			if got := e.Stats().CatchUps; got != wantCatchUps {
				t.Errorf("CatchUps = %d, want %d", got, wantCatchUps)
			}
			gaps := e.Stats().Gaps
			for _, m := range tt.after {
				h.HandleLogMessage(m.pos, m.payload)
			}
			if got := e.Stats().Gaps; got != gaps {
				t.Errorf("Gaps = %d after the later live messages, want %d (no false gap)", got, gaps)
			}
		})
	}
}
