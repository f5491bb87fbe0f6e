package engine_test

import (
	"context"
	"fmt"
	"github.com/halilbulentorhon/invacache-go/internal/poll"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go/internal/engine"
	"github.com/halilbulentorhon/invacache-go/invalidation"
	"github.com/halilbulentorhon/invacache-go/invalidation/drivers/memory"
)

// target is a fake cache: it records every invalidation.
type target struct {
	mu     sync.Mutex
	calls  [][]string // InvalidateKeys calls, in order; nil entry = InvalidateAll
	keys   map[string]int
	clears int
}

func newTarget() *target { return &target{keys: map[string]int{}} }

func (t *target) InvalidateKeys(keys []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.calls = append(t.calls, slices.Clone(keys))
	for _, k := range keys {
		t.keys[k]++
	}
}

func (t *target) InvalidateAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.calls = append(t.calls, nil)
	t.clears++
}

func (t *target) count(key string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.keys[key]
}

func (t *target) clearCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.clears
}

// received returns the keys of all InvalidateKeys calls in order.
func (t *target) received() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for _, c := range t.calls {
		out = append(out, c...)
	}
	return out
}

func (t *target) keyCalls() [][]string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out [][]string
	for _, c := range t.calls {
		if c != nil {
			out = append(out, c)
		}
	}
	return out
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, 10*time.Second, what, cond)
}

// node is one engine attached to a bus through its own Conn.
type node struct {
	e    *engine.Engine
	conn *memory.Conn
	t    *target
}

// newNode starts an engine on bus with cfg (Driver set to a new Conn unless
// cfg.Driver is given, in which case conn is nil), waits for its link and
// closes it at the end of the test.
func newNode(t testing.TB, bus *memory.Bus, cfg engine.Config) *node {
	t.Helper()
	n := &node{t: newTarget()}
	if cfg.Driver == nil {
		n.conn = bus.Connect()
		cfg.Driver = n.conn
		t.Cleanup(func() { _ = n.conn.Close() })
	}
	e, err := engine.New(cfg, n.t)
	if err != nil {
		t.Fatalf("engine.New: %v", err)
	}
	n.e = e
	t.Cleanup(func() { _ = e.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.WaitLinkUp(ctx); err != nil {
		t.Fatalf("WaitLinkUp: %v", err)
	}
	return n
}

// gatedPair starts node a, publishing through a gate, and node b on one
// bus, closed at the end of the test.
func gatedPair(t testing.TB) (a, b *node, g *gate) {
	t.Helper()
	bus := memory.NewBus()
	t.Cleanup(func() { _ = bus.Close() })
	conn := bus.Connect()
	t.Cleanup(func() { _ = conn.Close() })
	g = newGate(conn)
	return newNode(t, bus, engine.Config{Driver: g}), newNode(t, bus, engine.Config{}), g
}

// newBusNoLog returns a bus whose replay log is off, so gaps clear as
// without a Replayer; the caller closes it.
func newBusNoLog(t testing.TB) *memory.Bus {
	t.Helper()
	bus, err := memory.NewBusWith(memory.BusConfig{DisableReplay: true})
	if err != nil {
		t.Fatal(err)
	}
	return bus
}

func flush(t testing.TB, e *engine.Engine) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

// gate wraps a driver so a test can hold publishes: while closed, Publish
// reports its arrival on entered and waits for open.
type gate struct {
	invalidation.Driver
	mu      sync.Mutex
	held    bool
	release chan struct{}
	entered chan [][]byte
}

func newGate(d invalidation.Driver) *gate {
	return &gate{Driver: d, entered: make(chan [][]byte, 100)}
}

func (g *gate) hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.held, g.release = true, make(chan struct{})
}

func (g *gate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.held {
		g.held = false
		close(g.release)
	}
}

func (g *gate) Publish(ctx context.Context, payloads [][]byte) error {
	g.mu.Lock()
	held, release := g.held, g.release
	g.mu.Unlock()
	if held {
		g.entered <- payloads
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return g.Driver.Publish(ctx, payloads)
}

func keysN(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}
