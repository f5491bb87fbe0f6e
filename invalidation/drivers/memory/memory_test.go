package memory_test

import (
	"context"
	"errors"
	"github.com/halilbulentorhon/invacache-go/internal/poll"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
	"github.com/halilbulentorhon/invacache-go/invalidation"
	"github.com/halilbulentorhon/invacache-go/invalidation/drivers/memory"
)

// recorder is a Handler that logs what it sees as strings.
type recorder struct {
	mu     sync.Mutex
	events []string
	alive  int
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, s)
}
func (r *recorder) HandleMessage(p []byte) { r.add("msg:" + string(p)) }
func (r *recorder) HandleLogMessage(_ invalidation.LogPos, p []byte) {
	r.HandleMessage(p)
}
func (r *recorder) HandleLinkUp()        { r.add("up") }
func (r *recorder) HandleLinkDown(error) { r.add("down") }
func (r *recorder) HandleAlive() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.alive++
}
func (r *recorder) HandleAliveAt(time.Time) { r.HandleAlive() }

func (r *recorder) snapshot() ([]string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...), r.alive
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, 10*time.Second, what, cond)
}

func waitEvents(t *testing.T, r *recorder, want ...string) {
	t.Helper()
	var got []string
	waitFor(t, "events "+strings.Join(want, ","), func() bool {
		got, _ = r.snapshot()
		return len(got) >= len(want)
	})
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("events = %q, want %q", got, want)
	}
}

func subscribe(t *testing.T, c *memory.Conn, ping time.Duration) *recorder {
	t.Helper()
	r := &recorder{}
	sub, err := c.Subscribe(r, invalidation.SubscribeOptions{PingInterval: ping})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return r
}

func publish(t *testing.T, c *memory.Conn, payloads ...string) error {
	t.Helper()
	var ps [][]byte
	for _, p := range payloads {
		ps = append(ps, []byte(p))
	}
	return c.Publish(context.Background(), ps)
}

func TestFanOutInOrder(t *testing.T) {
	leakcheck.Check(t)
	bus := memory.NewBus()
	defer bus.Close()
	a, b := bus.Connect(), bus.Connect()
	ra, rb := subscribe(t, a, time.Hour), subscribe(t, b, time.Hour)
	waitEvents(t, ra, "up")
	waitEvents(t, rb, "up")
	buf := []byte("1")
	if err := a.Publish(context.Background(), [][]byte{buf, []byte("2")}); err != nil {
		t.Fatal(err)
	}
	buf[0] = 'x' // the bus copied the payload
	if err := publish(t, b, "3"); err != nil {
		t.Fatal(err)
	}
	waitEvents(t, ra, "up", "msg:1", "msg:2", "msg:3")
	waitEvents(t, rb, "up", "msg:1", "msg:2", "msg:3")
}

func TestFaults(t *testing.T) {
	leakcheck.Check(t)
	bus := memory.NewBus()
	defer bus.Close()
	a, b := bus.Connect(), bus.Connect()
	rb := subscribe(t, b, time.Hour)
	waitEvents(t, rb, "up")

	a.FailPublish(2)
	for i := range 2 {
		if err := publish(t, a, "x"); !errors.Is(err, memory.ErrInjected) {
			t.Fatalf("publish %d = %v, want ErrInjected", i, err)
		}
	}
	b.DropNext(2)
	if err := publish(t, a, "lost1", "lost2", "kept"); err != nil {
		t.Fatal(err)
	}
	waitEvents(t, rb, "up", "msg:kept")

	b.Stall()
	if err := publish(t, a, "held"); err != nil {
		t.Fatal(err)
	}
	if err := publish(t, b, "stalled conns still publish"); err != nil {
		t.Fatal(err)
	}
	b.Unstall()
	waitEvents(t, rb, "up", "msg:kept", "msg:held", "msg:stalled conns still publish")

	b.Disconnect()
	if err := publish(t, b, "x"); !errors.Is(err, memory.ErrDisconnected) {
		t.Fatalf("publish while disconnected = %v, want ErrDisconnected", err)
	}
	waitEvents(t, rb, "up", "msg:kept", "msg:held", "msg:stalled conns still publish", "down")
	if err := publish(t, a, "missed"); err != nil {
		t.Fatal(err)
	}
	b.Reconnect()
	if err := publish(t, a, "after"); err != nil {
		t.Fatal(err)
	}
	waitEvents(t, rb, "up", "msg:kept", "msg:held", "msg:stalled conns still publish", "down", "up", "msg:after")
}

func TestPings(t *testing.T) {
	leakcheck.Check(t)
	bus := memory.NewBus()
	defer bus.Close()
	c := bus.Connect()
	r := subscribe(t, c, 5*time.Millisecond)
	alive := func() int { _, n := r.snapshot(); return n }
	waitFor(t, "pings", func() bool { return alive() >= 3 })
	c.Stall()
	// A tick racing with Stall may still land; after that, none.
	waitFor(t, "pings to stop", func() bool {
		n := alive()
		time.Sleep(30 * time.Millisecond)
		return alive() == n
	})
	c.Unstall()
	n := alive()
	waitFor(t, "pings to resume", func() bool { return alive() > n+2 })
}

func TestClose(t *testing.T) {
	leakcheck.Check(t)
	bus := memory.NewBus()
	c := bus.Connect()
	r := subscribe(t, c, time.Millisecond)
	waitEvents(t, r, "up")
	for range 2 {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := publish(t, c, "x"); !errors.Is(err, memory.ErrClosed) {
		t.Errorf("publish after Close = %v, want ErrClosed", err)
	}
	if _, err := c.Subscribe(&recorder{}, invalidation.SubscribeOptions{}); !errors.Is(err, memory.ErrClosed) {
		t.Errorf("Subscribe after Close = %v, want ErrClosed", err)
	}
	_ = bus.Close()
	_ = bus.Close()
	if err := publish(t, bus.Connect(), "x"); !errors.Is(err, memory.ErrClosed) {
		t.Errorf("publish on a closed bus = %v, want ErrClosed", err)
	}
}

func TestRegistry(t *testing.T) {
	leakcheck.Check(t)
	tests := []struct {
		name    string
		spec    invalidation.Spec
		wantErr string // substring; "" = success
	}{
		{"default bus", invalidation.Spec{Type: "memory"}, ""},
		{"named bus", invalidation.Spec{Type: "memory", Options: map[string]any{"Bus": "t1"}}, ""},
		{"unknown key", invalidation.Spec{Type: "memory", Options: map[string]any{"Address": "x"}}, `"Address"`},
		{"wrong type", invalidation.Spec{Type: "memory", Options: map[string]any{"Bus": 3}}, `"Bus"`},
		{"replay disabled", invalidation.Spec{Type: "memory", Options: map[string]any{"bus": "t1", "DisableReplay": true}}, ""},
		{"replay disabled not a bool", invalidation.Spec{Type: "memory", Options: map[string]any{"DisableReplay": "yes"}}, `"DisableReplay"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := invalidation.Open(tt.spec)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Open = %v", err)
				}
				defer d.Close()
				_, herr := d.(invalidation.Replayer).LogHead(context.Background())
				if disabled := tt.spec.Options["DisableReplay"] == true; disabled != errors.Is(herr, invalidation.ErrReplayDisabled) {
					t.Errorf("LogHead error = %v with DisableReplay %v", herr, disabled)
				}
				return
			}
			if err == nil || !errors.Is(err, config.ErrInvalidConfig) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Open error = %v, want ErrInvalidConfig naming %s", err, tt.wantErr)
			}
		})
	}
	// Two drivers opened on the same name share a bus.
	d1, _ := invalidation.Open(invalidation.Spec{Type: "memory", Options: map[string]any{"Bus": "shared"}})
	d2, _ := invalidation.Open(invalidation.Spec{Type: "memory", Options: map[string]any{"Bus": "shared"}})
	defer d1.Close()
	defer d2.Close()
	r := &recorder{}
	sub, err := d2.Subscribe(r, invalidation.SubscribeOptions{PingInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	waitEvents(t, r, "up")
	if err := d1.Publish(context.Background(), [][]byte{[]byte("k")}); err != nil {
		t.Fatal(err)
	}
	waitEvents(t, r, "up", "msg:k")
}
