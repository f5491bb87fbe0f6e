package engine_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/engine"
	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
	"github.com/halilbulentorhon/invacache-go/internal/wire"
	"github.com/halilbulentorhon/invacache-go/invalidation/drivers/memory"
)

func TestNewValidates(t *testing.T) {
	leakcheck.Check(t)
	bus := memory.NewBus()
	defer bus.Close()
	conn := bus.Connect()
	tests := []struct {
		name  string
		cfg   engine.Config
		field string
	}{
		{"nil driver", engine.Config{}, "Driver"},
		{"negative staleness", engine.Config{Driver: conn, MaxStaleness: -1}, "MaxStaleness"},
		{"bad strategy", engine.Config{Driver: conn, GapStrategy: "sometimes"}, "GapStrategy"},
		{"negative backoff", engine.Config{Driver: conn, RetryBackoffMin: -1}, "RetryBackoffMin"},
		{"max below min", engine.Config{Driver: conn, RetryBackoffMin: time.Second, RetryBackoffMax: time.Millisecond}, "RetryBackoffMax"},
		{"negative message size", engine.Config{Driver: conn, MaxMessageBytes: -1}, "MaxMessageBytes"},
		{"negative flush timeout", engine.Config{Driver: conn, FlushTimeout: -1}, "FlushTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := engine.New(tt.cfg, newTarget())
			if err == nil {
				_ = e.Close()
				t.Fatalf("New succeeded, want an error naming %s", tt.field)
			}
			if !errors.Is(err, config.ErrInvalidConfig) {
				t.Errorf("error %v does not wrap config.ErrInvalidConfig", err)
			}
			if got := err.Error(); !strings.HasPrefix(got, "engine: ") || !strings.Contains(got, tt.field) {
				t.Errorf("error %q does not name %q", got, tt.field)
			}
		})
	}
	if _, err := engine.New(engine.Config{Driver: conn}, nil); !errors.Is(err, config.ErrInvalidConfig) {
		t.Errorf("nil target: error %v, want ErrInvalidConfig", err)
	}
}

// Rule 1.
func TestSelfSuppression(t *testing.T) {
	leakcheck.Check(t)
	bus := memory.NewBus()
	defer bus.Close()
	a := newNode(t, bus, engine.Config{})
	b := newNode(t, bus, engine.Config{})
	if err := a.e.BroadcastDelete("k"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b to receive k", func() bool { return b.t.count("k") == 1 })
	waitFor(t, "a to see its own message", func() bool { return a.e.Stats().IgnoredOwn == 1 })
	if got := a.t.count("k"); got != 0 {
		t.Errorf("writer invalidated its own key %d times, want 0", got)
	}
	if got := a.e.Stats().MessagesApplied; got != 0 {
		t.Errorf("writer applied %d messages, want 0", got)
	}
}

// Rule 2: a broadcast issued while the bus refuses publishes arrives after
// recovery.
func TestBroadcastWhileDownArrives(t *testing.T) {
	tests := []struct {
		name  string
		fault func(c *memory.Conn)
		heal  func(c *memory.Conn)
	}{
		{"FailPublish", func(c *memory.Conn) { c.FailPublish(3) }, func(*memory.Conn) {}},
		{"Disconnect", (*memory.Conn).Disconnect, (*memory.Conn).Reconnect},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakcheck.Check(t)
			bus := memory.NewBus()
			defer bus.Close()
			cfg := engine.Config{RetryBackoffMin: time.Millisecond, RetryBackoffMax: 5 * time.Millisecond}
			a := newNode(t, bus, cfg)
			b := newNode(t, bus, cfg)
			tt.fault(a.conn)
			if err := a.e.BroadcastDelete("k"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "publish failures", func() bool { return a.e.Stats().PublishFailures >= 3 })
			tt.heal(a.conn)
			flush(t, a.e)
			waitFor(t, "b to receive k", func() bool { return b.t.count("k") == 1 })
			s := a.e.Stats()
			if s.PublishRetries < 3 || s.KeysSent != 1 || s.MessagesSent != 1 || s.OutboxDepth != 0 {
				t.Errorf("stats = %+v, want >=3 retries, 1 key in 1 message, empty outbox", s)
			}
		})
	}
}

// Rule 2: group commit. The first broadcast leaves alone, at once; what
// arrives while it is in flight coalesces into one next message, and a
// pending clear subsumes pending keys.
func TestCoalescingGroupCommit(t *testing.T) {
	leakcheck.Check(t)
	a, b, g := gatedPair(t)

	g.hold()
	if err := a.e.BroadcastDelete("first"); err != nil {
		t.Fatal(err)
	}
	<-g.entered // the publisher is blocked in Publish with "first" alone
	many := keysN("k", 10)
	for range 10 {
		for _, k := range many {
			if err := a.e.BroadcastDelete(k); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := a.e.Stats().OutboxDepth; got != 11 {
		t.Errorf("OutboxDepth = %d, want 11 (1 in flight + 10 distinct pending)", got)
	}
	g.open()
	flush(t, a.e)
	waitFor(t, "b to receive everything", func() bool { return len(b.t.received()) == 11 })
	want := [][]string{{"first"}, many}
	if got := b.t.keyCalls(); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("b received calls %q, want %q", got, want)
	}
	s := a.e.Stats()
	if s.BroadcastsQueued != 101 || s.KeysSent != 11 || s.MessagesSent != 2 {
		t.Errorf("stats queued/keys/messages = %d/%d/%d, want 101/11/2", s.BroadcastsQueued, s.KeysSent, s.MessagesSent)
	}

	// A clear subsumes keys queued before and after it.
	g.hold()
	_ = a.e.BroadcastDelete("second")
	<-g.entered
	_ = a.e.BroadcastDelete("x", "y")
	_ = a.e.BroadcastClear()
	_ = a.e.BroadcastDelete("z")
	g.open()
	flush(t, a.e)
	clearsBefore := 1 // b's own link-up
	waitFor(t, "b to receive the clear", func() bool { return b.t.clearCount() == clearsBefore+1 })
	if s := a.e.Stats(); s.ClearsSent != 1 || s.KeysSent != 12 || s.MessagesSent != 4 {
		t.Errorf("stats clears/keys/messages = %d/%d/%d, want 1/12/4", s.ClearsSent, s.KeysSent, s.MessagesSent)
	}
	for _, k := range []string{"x", "y", "z"} {
		if n := b.t.count(k); n != 0 {
			t.Errorf("key %q sent %d times, want 0 (subsumed by the clear)", k, n)
		}
	}
}

// Rule 2/§4: one publisher per node keeps order, across batches and splits.
func TestPerOriginOrder(t *testing.T) {
	leakcheck.Check(t)
	bus := memory.NewBus()
	defer bus.Close()
	a := newNode(t, bus, engine.Config{MaxMessageBytes: 1024})
	b := newNode(t, bus, engine.Config{})
	keys := keysN("key:", 2000)
	for i, k := range keys {
		if err := a.e.BroadcastDelete(k); err != nil {
			t.Fatal(err)
		}
		if i%97 == 0 {
			flush(t, a.e) // vary batch sizes
		}
	}
	flush(t, a.e)
	waitFor(t, "b to receive every key", func() bool { return len(b.t.received()) >= len(keys) })
	if got := b.t.received(); !slices.Equal(got, keys) {
		t.Errorf("b received %d keys out of order or duplicated", len(got))
	}
	if s := b.e.Stats(); s.Gaps != 1 || s.ClearsOnGap != 1 {
		t.Errorf("b gaps/clears = %d/%d, want 1/1 (its first link-up only)", s.Gaps, s.ClearsOnGap)
	}
	if s := a.e.Stats(); s.MessagesSent <= 1 {
		t.Errorf("a sent %d messages, want many (split at 1024 bytes)", s.MessagesSent)
	}
}

// Rule 3: every (re)subscribe is a gap; without a log it clears
// (TestCatchUpOnReconnect has the log).
func TestGapOnReconnect(t *testing.T) {
	for _, strategy := range []string{config.GapClear, config.GapNone} {
		t.Run(strategy, func(t *testing.T) {
			leakcheck.Check(t)
			bus := newBusNoLog(t)
			defer bus.Close()
			b := newNode(t, bus, engine.Config{GapStrategy: strategy})
			wantClears := 0
			if strategy == config.GapClear {
				wantClears = 1
			}
			waitFor(t, "first link-up clear", func() bool { return b.t.clearCount() == wantClears })
			b.conn.Disconnect()
			waitFor(t, "link down", func() bool { return !b.e.Stats().LinkUp })
			b.conn.Reconnect()
			waitFor(t, "second link-up", func() bool { return b.e.Stats().Gaps == 2 })
			if strategy == config.GapClear {
				wantClears = 2
			}
			if got := b.t.clearCount(); got != wantClears {
				t.Errorf("InvalidateAll called %d times, want %d", got, wantClears)
			}
			if got := b.e.Stats().ClearsOnGap; got != uint64(wantClears) {
				t.Errorf("ClearsOnGap = %d, want %d", got, wantClears)
			}
		})
	}
}

// Rule 3: a sequence jump is a gap; a duplicate is not. Without a log it
// clears (TestCatchUpOnLostMessage has the log).
func TestGapOnLostMessage(t *testing.T) {
	for _, strategy := range []string{config.GapClear, config.GapNone} {
		t.Run(strategy, func(t *testing.T) {
			leakcheck.Check(t)
			bus := newBusNoLog(t)
			defer bus.Close()
			a := newNode(t, bus, engine.Config{})
			b := newNode(t, bus, engine.Config{GapStrategy: strategy})
			send := func(k string) {
				t.Helper()
				if err := a.e.BroadcastDelete(k); err != nil {
					t.Fatal(err)
				}
				flush(t, a.e)
			}
			send("baseline")
			waitFor(t, "baseline", func() bool { return b.t.count("baseline") == 1 })
			clears := b.t.clearCount()
			b.conn.DropNext(1)
			send("lost")
			send("after")
			waitFor(t, "after", func() bool { return b.t.count("after") == 1 })
			if got := b.e.Stats().Gaps; got != 2 {
				t.Errorf("Gaps = %d, want 2 (link-up, sequence jump)", got)
			}
			wantClears := clears
			if strategy == config.GapClear {
				wantClears++
			}
			if got := b.t.clearCount(); got != wantClears {
				t.Errorf("InvalidateAll called %d times, want %d", got, wantClears)
			}
			if b.t.count("lost") != 0 {
				t.Errorf("the dropped message arrived")
			}
		})
	}
}

// Rule 3: a retried publish repeats sequence numbers; duplicates are applied
// again and are not gaps.
func TestDuplicateIsNotGap(t *testing.T) {
	leakcheck.Check(t)
	bus := memory.NewBus()
	defer bus.Close()
	b := newNode(t, bus, engine.Config{})
	pub := bus.Connect()
	defer pub.Close()
	p1, _, _ := wire.AppendBatches(nil, nil, 77, 1, false, []string{"a"}, 1024)
	p2, _, _ := wire.AppendBatches(nil, nil, 77, 2, false, []string{"b"}, 1024)
	for _, batch := range [][][]byte{p1, p2, p1, p2} {
		if err := pub.Publish(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "4 messages", func() bool { return b.e.Stats().MessagesApplied == 4 })
	if got := b.e.Stats().Gaps; got != 1 {
		t.Errorf("Gaps = %d, want 1 (link-up only)", got)
	}
	if b.t.count("a") != 2 || b.t.count("b") != 2 {
		t.Errorf("a, b applied %d, %d times, want 2, 2", b.t.count("a"), b.t.count("b"))
	}
}

// Rules 3 and 7: unknown versions and malformed envelopes are gaps;
// raw keys and empty payloads are operator invalidations.
func TestForeignPayloads(t *testing.T) {
	tests := []struct {
		name          string
		payload       string
		strategy      string
		wantClears    int // beyond the link-up clear
		wantKey       string
		wantMalformed uint64
		wantRaw       uint64
		wantGaps      uint64 // beyond the link-up gap
	}{
		{"unknown version clears", "\x00ivc2 0000000000000001 1 X", config.GapClear, 1, "", 0, 0, 1},
		{"unknown version with strategy none", "\x00ivc2 0000000000000001 1 X", config.GapNone, 0, "", 0, 0, 1},
		{"malformed envelope clears", "\x00ivc1 not hex", config.GapClear, 1, "", 1, 0, 1},
		{"raw key", "user:1", config.GapClear, 0, "user:1", 0, 1, 0},
		{"empty payload clears", "", config.GapNone, 1, "", 0, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakcheck.Check(t)
			bus := memory.NewBus()
			defer bus.Close()
			b := newNode(t, bus, engine.Config{GapStrategy: tt.strategy})
			base := b.t.clearCount()
			pub := bus.Connect()
			defer pub.Close()
			if err := pub.Publish(context.Background(), [][]byte{[]byte(tt.payload)}); err != nil {
				t.Fatal(err)
			}
			// A raw key behind it: once applied, the payload's gap (its
			// clear, after reading the log's head) is complete.
			if err := pub.Publish(context.Background(), [][]byte{[]byte("sentinel")}); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the payload", func() bool { return b.t.count("sentinel") == 1 })
			s := b.e.Stats()
			s.RawKeys-- // the sentinel
			if got := b.t.clearCount() - base; got != tt.wantClears {
				t.Errorf("InvalidateAll called %d times, want %d", got, tt.wantClears)
			}
			if tt.wantKey != "" && b.t.count(tt.wantKey) != 1 {
				t.Errorf("key %q invalidated %d times, want 1", tt.wantKey, b.t.count(tt.wantKey))
			}
			if s.Malformed != tt.wantMalformed || s.RawKeys != tt.wantRaw || s.Gaps-1 != tt.wantGaps {
				t.Errorf("malformed/raw/gaps = %d/%d/%d, want %d/%d/%d", s.Malformed, s.RawKeys, s.Gaps-1, tt.wantMalformed, tt.wantRaw, tt.wantGaps)
			}
		})
	}
}

// Rule 7: garbage never breaks a node.
func TestGarbageNeverBreaksNode(t *testing.T) {
	leakcheck.Check(t)
	bus := memory.NewBus()
	defer bus.Close()
	a := newNode(t, bus, engine.Config{})
	b := newNode(t, bus, engine.Config{})
	pub := bus.Connect()
	defer pub.Close()
	r := rand.New(rand.NewPCG(7, 7))
	sizes := []int{0, 1, 3, 4, 5, 17, 100, 4096, 64 << 10, 1 << 20}
	const n = 200
	for i := range n {
		p := make([]byte, sizes[i%len(sizes)])
		for j := range p {
			p[j] = byte(r.Uint32())
		}
		if i%2 == 0 && len(p) >= 4 {
			copy(p, wire.Magic) // claims to be an envelope
		}
		if i%4 == 0 && len(p) >= 24 {
			copy(p, "\x00ivc1 0123456789abcdef ")
		}
		if err := pub.Publish(context.Background(), [][]byte{p}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "all garbage", func() bool { return b.e.Stats().MessagesReceived == n })
	if err := a.e.BroadcastDelete("still-works"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a real message after the garbage", func() bool { return b.t.count("still-works") == 1 })
	s := b.e.Stats()
	if s.Malformed == 0 || s.RawKeys == 0 {
		t.Errorf("malformed/raw = %d/%d, want both > 0", s.Malformed, s.RawKeys)
	}
}

// Rule 4, without a log: a lapse and a reconnect clear
// (TestCatchUpAfterLapse has the log).
func TestMaxStaleness(t *testing.T) {
	leakcheck.Check(t)
	bus := newBusNoLog(t)
	defer bus.Close()
	a := newNode(t, bus, engine.Config{})
	b := newNode(t, bus, engine.Config{MaxStaleness: 200 * time.Millisecond})
	waitFor(t, "serving", b.e.Serving)

	b.conn.Stall()
	waitFor(t, "not serving after a stall", func() bool { return !b.e.Serving() })
	clears := b.t.clearCount()
	if err := a.e.BroadcastDelete("held"); err != nil {
		t.Fatal(err)
	}
	flush(t, a.e)
	b.conn.Unstall()
	waitFor(t, "serving again", b.e.Serving)
	if got := b.t.clearCount(); got != clears+1 {
		t.Errorf("InvalidateAll called %d times after the lapse, want 1", got-clears)
	}
	waitFor(t, "held message", func() bool { return b.t.count("held") == 1 })

	b.conn.Disconnect()
	waitFor(t, "not serving while disconnected", func() bool { return !b.e.Serving() })
	clears = b.t.clearCount()
	b.conn.Reconnect()
	waitFor(t, "serving after reconnect", b.e.Serving)
	if got := b.t.clearCount(); got != clears+1 {
		t.Errorf("InvalidateAll called %d times after reconnect, want 1", got-clears)
	}
	if s := b.e.Stats(); s.LastAlive.IsZero() || !s.LinkUp {
		t.Errorf("stats LastAlive/LinkUp = %v/%v, want set/true", s.LastAlive, s.LinkUp)
	}
}

// Rule 4 without the bound: always serving, even before the link.
func TestMaxStalenessDisabled(t *testing.T) {
	leakcheck.Check(t)
	bus := memory.NewBus()
	defer bus.Close()
	conn := bus.Connect()
	defer conn.Close()
	conn.Disconnect()
	e, err := engine.New(engine.Config{Driver: conn}, newTarget())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if !e.Serving() {
		t.Errorf("Serving() = false with MaxStaleness 0, want true")
	}
}

func TestFlush(t *testing.T) {
	leakcheck.Check(t)
	a, _, g := gatedPair(t)
	flush(t, a.e) // nothing queued: returns at once

	g.hold()
	_ = a.e.BroadcastDelete("k")
	<-g.entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.e.Flush(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Flush with a done context = %v, want context.Canceled", err)
	}
	done := make(chan error, 1)
	go func() { done <- a.e.Flush(context.Background()) }()
	g.open()
	if err := <-done; err != nil {
		t.Errorf("Flush = %v, want nil", err)
	}
	if s := a.e.Stats(); s.KeysSent != 1 || s.OutboxDepth != 0 {
		t.Errorf("after Flush keys sent/depth = %d/%d, want 1/0", s.KeysSent, s.OutboxDepth)
	}
}

// Close flushes for at most FlushTimeout, then counts what it drops.
func TestCloseDropsCounted(t *testing.T) {
	leakcheck.Check(t)
	bus := memory.NewBus()
	defer bus.Close()
	conn := bus.Connect()
	defer conn.Close()
	e, err := engine.New(engine.Config{Driver: conn, FlushTimeout: 50 * time.Millisecond, RetryBackoffMin: time.Millisecond, RetryBackoffMax: 2 * time.Millisecond}, newTarget())
	if err != nil {
		t.Fatal(err)
	}
	conn.Disconnect()
	_ = e.BroadcastDelete("a", "b", "c")
	err = e.Close()
	if !errors.Is(err, engine.ErrUnsent) {
		t.Errorf("Close = %v, want ErrUnsent", err)
	}
	if got := e.Stats().BroadcastsDropped; got != 3 {
		t.Errorf("BroadcastsDropped = %d, want 3", got)
	}
	if err := e.BroadcastDelete("d"); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("BroadcastDelete after Close = %v, want ErrClosed", err)
	}
	if err := e.BroadcastClear(); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("BroadcastClear after Close = %v, want ErrClosed", err)
	}
	if err := e.Flush(context.Background()); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("Flush after a lossy Close = %v, want ErrClosed", err)
	}
	if err := e.WaitLinkUp(context.Background()); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("WaitLinkUp after Close = %v, want ErrClosed", err)
	}
}

func TestCloseIdempotent(t *testing.T) {
	leakcheck.Check(t)
	bus := memory.NewBus()
	defer bus.Close()
	a := newNode(t, bus, engine.Config{MaxStaleness: time.Second})
	_ = a.e.BroadcastDelete("k")
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = a.e.Close() }()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Close #%d = %v, want nil", i, err)
		}
	}
	if s := a.e.Stats(); s.KeysSent != 1 || s.BroadcastsDropped != 0 {
		t.Errorf("keys sent/dropped = %d/%d, want 1/0 (Close flushes)", s.KeysSent, s.BroadcastsDropped)
	}
	if err := a.conn.Publish(context.Background(), [][]byte{[]byte("x")}); err != nil {
		t.Errorf("the driver after engine Close: Publish = %v, want nil (Close must not close the driver)", err)
	}
}
