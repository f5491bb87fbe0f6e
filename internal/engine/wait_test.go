package engine_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go/internal/engine"
	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
	"github.com/halilbulentorhon/invacache-go/invalidation"
)

// ended is a context that has already ended: WaitServing answers "now".
func ended() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// WaitServing wakes when serving turns on (first link-up, and again after a
// link-down), answers at once with an ended context, and ends at Close.
func TestWaitServing(t *testing.T) {
	tests := []struct {
		name         string
		maxStaleness time.Duration
	}{
		{"bound on", 100 * time.Millisecond}, // a link-down stops serving once it lapses
		{"bound off", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakcheck.Check(t)
			d := &handDriver{h: make(chan invalidation.Handler, 1)}
			e, err := engine.New(engine.Config{Driver: d, MaxStaleness: tt.maxStaleness}, newTarget())
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			h := <-d.h
			if err := e.WaitServing(ended()); !errors.Is(err, context.Canceled) {
				t.Errorf("before the first link-up: WaitServing = %v, want context.Canceled", err)
			}
			waited := make(chan error, 1)
			go func() { waited <- e.WaitServing(context.Background()) }()
			h.HandleLinkUp()
			if err := <-waited; err != nil {
				t.Errorf("across the first link-up: WaitServing = %v, want nil", err)
			}
			// With the bound on, a starved test may already see it lapse.
			if err := e.WaitServing(ended()); err != nil && (tt.maxStaleness == 0 || e.Serving()) {
				t.Errorf("while serving: WaitServing(ended ctx) = %v, want nil", err)
			}
			if tt.maxStaleness == 0 {
				return // serves through a link-down: nothing more to wait for
			}
			h.HandleLinkDown(errors.New("test: link down"))
			waitNotServing(t, e) // a known loss serves until the bound lapses
			go func() { waited <- e.WaitServing(context.Background()) }()
			h.HandleLinkUp()
			if err := <-waited; err != nil {
				t.Errorf("across a link-up after a link-down: WaitServing = %v, want nil", err)
			}
			h.HandleLinkDown(errors.New("test: link down"))
			waitNotServing(t, e)
			go func() { waited <- e.WaitServing(context.Background()) }()
			e.Close()
			if err := <-waited; !errors.Is(err, engine.ErrClosed) {
				t.Errorf("across Close: WaitServing = %v, want ErrClosed", err)
			}
		})
	}
}

// waitNotServing polls until e stops serving (its bound lapsed).
func waitNotServing(t *testing.T, e *engine.Engine) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for e.Serving() {
		if time.Now().After(deadline) {
			t.Fatal("still serving 10s after a link-down")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
