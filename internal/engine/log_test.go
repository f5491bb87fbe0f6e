package engine_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go/internal/engine"
	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
	"github.com/halilbulentorhon/invacache-go/invalidation/drivers/memory"
)

// syncBuffer is a bytes.Buffer safe for the engine's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestLogging(t *testing.T) {
	leakcheck.Check(t)
	bus := memory.NewBus()
	defer bus.Close()
	var out syncBuffer
	log := slog.New(slog.NewTextHandler(&out, nil))
	conn := bus.Connect()
	defer conn.Close()
	e, err := engine.New(engine.Config{Driver: conn, Logger: log, FlushTimeout: 20 * time.Millisecond}, newTarget())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.WaitLinkUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	pub := bus.Connect()
	defer pub.Close()
	for range 50 { // a flood logs once (rate-limited per reason)
		if err := pub.Publish(context.Background(), [][]byte{[]byte("\x00ivc1 garbage")}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "malformed", func() bool { return e.Stats().Malformed == 50 })
	conn.Disconnect()
	_ = e.BroadcastDelete("a", "b")
	_ = e.Close()
	got := out.String()
	if n := strings.Count(got, `reason="malformed envelope"`); n != 1 {
		t.Errorf("%d warnings for 50 malformed payloads within a second, want 1", n)
	}
	for _, want := range []string{
		`level=WARN msg="engine: invalidations may have been missed" bytes=13`,
		`reason="malformed envelope"`,
		`level=ERROR msg="engine: closed with unpublished invalidations; peers may keep stale entries" keys=2`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("log lacks %q:\n%s", want, got)
		}
	}
}
