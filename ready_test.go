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

// Readiness is not the link: a stalled link (or a Redis outage) leaves
// ReadyHandler at 200, so one shared Redis cannot take every replica out of
// rotation at once; LinkHandler reports the link. Only Close fails both.
func TestReadyHandler(t *testing.T) {
	leakcheck.Check(t)
	local := newLocal[int](t, config.InMemoryConfig{})
	n := newNodes(t, 1, func(ic *config.InvalidationConfig) { ic.MaxStaleness = 200 * time.Millisecond })[0]
	closed := newLocal[int](t, config.InMemoryConfig{})
	closed.Close()
	probe := func(h http.Handler) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		return rec.Code, rec.Body.String()
	}
	ready := invacache.ReadyHandler(local, n)
	link := invacache.LinkHandler(local, n)
	check := func(what string, h http.Handler, wantCode int, wantBody string) {
		t.Helper()
		if code, body := probe(h); code != wantCode || !strings.Contains(body, wantBody) {
			t.Errorf("%s: %d %q, want %d with %q", what, code, body, wantCode, wantBody)
		}
	}
	check("ready, link up", ready, http.StatusOK, "ready\n")
	check("link, link up", link, http.StatusOK, "link up\n")

	n.conn.Stall()
	eventually(t, 5*time.Second, "a stalled link should fail the link probe", func() bool {
		code, _ := probe(link)
		return code == http.StatusServiceUnavailable
	})
	check("link, stalled", link, http.StatusServiceUnavailable, "cache 1: not serving")
	check("ready, stalled", ready, http.StatusOK, "ready\n")
	n.conn.Unstall()
	eventually(t, 5*time.Second, "the link probe should pass again once the link is proven alive", func() bool {
		code, _ := probe(link)
		return code == http.StatusOK
	})

	n.conn.Disconnect()
	eventually(t, 5*time.Second, "a lost link should fail the link probe", func() bool {
		_, body := probe(link)
		return strings.Contains(body, "cache 1: link down")
	})
	check("ready, link down", ready, http.StatusOK, "ready\n")
	n.conn.Reconnect()

	check("ready, closed", invacache.ReadyHandler(closed), http.StatusServiceUnavailable, "not ready: cache 0: closed")
	check("link, closed", invacache.LinkHandler(local, closed), http.StatusServiceUnavailable, "link not up: cache 1: closed")
}
