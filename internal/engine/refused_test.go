package engine_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/engine"
	"github.com/halilbulentorhon/invacache-go/invalidation"
)

// downDriver reports one HandleLinkDown(err) at Subscribe and never comes up.
type downDriver struct{ err error }

func (d downDriver) Publish(context.Context, [][]byte) error { return nil }
func (d downDriver) Close() error                            { return nil }
func (d downDriver) Subscribe(h invalidation.Handler, _ invalidation.SubscribeOptions) (invalidation.Subscription, error) {
	h.HandleLinkDown(d.err)
	return closer{}, nil
}

type closer struct{}

func (closer) Close() error { return nil }

// WaitLinkUp reports a refusal that only configuration fixes (an error
// wrapping config.ErrInvalidConfig before the first link-up) at once; any
// other link-down error leaves it waiting for the link.
func TestWaitLinkUpReportsRefusal(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		refused bool
	}{
		{"refused", fmt.Errorf("driver: channel %q: %w", "x", config.ErrInvalidConfig), true},
		{"network", errors.New("connection refused"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := engine.New(engine.Config{Driver: downDriver{tt.err}}, newTarget())
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			err = e.WaitLinkUp(ctx)
			if got := errors.Is(err, config.ErrInvalidConfig); got != tt.refused {
				t.Errorf("WaitLinkUp = %v; wraps ErrInvalidConfig %v, want %v", err, got, tt.refused)
			}
			if !tt.refused && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("WaitLinkUp = %v, want the context's deadline", err)
			}
		})
	}
}
