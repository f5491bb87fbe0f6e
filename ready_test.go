package invacache_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
)

// done is a context that has already ended: WaitServing answers "now".
func done() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

func TestWaitServingLocal(t *testing.T) {
	leakcheck.Check(t)
	c := newLocal[int](t, config.InMemoryConfig{})
	if err := c.WaitServing(done()); err != nil {
		t.Errorf("WaitServing on a local cache = %v, want nil at once", err)
	}
	c.Close()
	if err := c.WaitServing(context.Background()); !errors.Is(err, invacache.ErrClosed) {
		t.Errorf("WaitServing after Close = %v, want ErrClosed", err)
	}
}

func TestWaitServingDistributed(t *testing.T) {
	leakcheck.Check(t)
	tests := []struct {
		name         string
		maxStaleness time.Duration
	}{
		{"bound on", 200 * time.Millisecond},
		{"bound off", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newNodes(t, 1, func(ic *config.InvalidationConfig) { ic.MaxStaleness = tt.maxStaleness })[0]
			if err := n.WaitServing(failAfter(t)); err != nil {
				t.Fatalf("WaitServing on a linked node = %v, want nil", err)
			}
			if err := n.WaitServing(done()); err != nil {
				t.Errorf("WaitServing(done ctx) on a serving node = %v, want nil", err)
			}
		})
	}
}

// A stalled link stops serving: WaitServing returns ctx.Err() until the
// link is proven alive again, then nil.
func TestWaitServingAfterALapse(t *testing.T) {
	leakcheck.Check(t)
	n := newNodes(t, 1, func(ic *config.InvalidationConfig) { ic.MaxStaleness = 200 * time.Millisecond })[0]
	n.conn.Stall()
	eventually(t, 5*time.Second, "a stalled link should stop serving", func() bool {
		return !n.Stats().Invalidation.Serving
	})
	if err := n.WaitServing(done()); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitServing(done ctx) while not serving = %v, want context.Canceled", err)
	}
	waited := make(chan error, 1)
	go func() { waited <- n.WaitServing(failAfter(t)) }()
	n.conn.Unstall()
	if err := <-waited; err != nil {
		t.Errorf("WaitServing across the Unstall = %v, want nil", err)
	}
	if !n.Stats().Invalidation.Serving {
		t.Errorf("WaitServing returned nil but the node does not serve")
	}
}

func TestWaitServingEndsAtClose(t *testing.T) {
	leakcheck.Check(t)
	n := newNodes(t, 1, func(ic *config.InvalidationConfig) { ic.MaxStaleness = 200 * time.Millisecond })[0]
	n.conn.Stall()
	eventually(t, 5*time.Second, "a stalled link should stop serving", func() bool {
		return !n.Stats().Invalidation.Serving
	})
	waited := make(chan error, 1)
	go func() { waited <- n.WaitServing(failAfter(t)) }()
	n.Close()
	if err := <-waited; !errors.Is(err, invacache.ErrClosed) {
		t.Errorf("WaitServing across Close = %v, want ErrClosed", err)
	}
}

func TestReadyHandler(t *testing.T) {
	leakcheck.Check(t)
	local := newLocal[int](t, config.InMemoryConfig{})
	n := newNodes(t, 1, func(ic *config.InvalidationConfig) { ic.MaxStaleness = 200 * time.Millisecond })[0]
	closed := newLocal[int](t, config.InMemoryConfig{})
	closed.Close()
	probe := func() (int, string) {
		rec := httptest.NewRecorder()
		invacache.ReadyHandler(local, n).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code, rec.Body.String()
	}
	if code, body := probe(); code != http.StatusOK || body != "ready\n" {
		t.Errorf("serving caches: %d %q, want 200 \"ready\\n\"", code, body)
	}
	n.conn.Stall()
	eventually(t, 5*time.Second, "a stalled link should make the probe fail", func() bool {
		code, _ := probe()
		return code == http.StatusServiceUnavailable
	})
	if _, body := probe(); !strings.Contains(body, "cache 1: not serving") {
		t.Errorf("body %q does not name cache 1 as not serving", body)
	}
	n.conn.Unstall()
	eventually(t, 5*time.Second, "the probe should pass again once the link is proven alive", func() bool {
		code, _ := probe()
		return code == http.StatusOK
	})
	rec := httptest.NewRecorder()
	invacache.ReadyHandler(closed).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "cache 0: closed") {
		t.Errorf("closed cache: %d %q, want 503 naming cache 0 closed", rec.Code, rec.Body.String())
	}
}
