package engine_test

import (
	"context"
	"testing"

	"github.com/halilbulentorhon/invacache-go/internal/engine"
	"github.com/halilbulentorhon/invacache-go/invalidation"
	"github.com/halilbulentorhon/invacache-go/invalidation/drivers/memory"
)

// discardDriver accepts every publish and never delivers anything.
type discardDriver struct{}

func (discardDriver) Publish(context.Context, [][]byte) error { return nil }
func (discardDriver) Close() error                            { return nil }
func (discardDriver) Subscribe(invalidation.Handler, invalidation.SubscribeOptions) (invalidation.Subscription, error) {
	return handSub{}, nil
}

type discardTarget struct{}

func (discardTarget) InvalidateKeys([]string) {}
func (discardTarget) InvalidateAll()          {}

// BenchmarkBroadcastDelete is the caller's cost of one single-key broadcast
// (what Set with WithInvalidation adds), cycling through 65,536 keys from
// one goroutine while the publisher runs. "discard" isolates the outbox and
// the encoder; "echo" publishes on an in-process bus that delivers the
// node's own messages back to it, as Redis does, so the background work of
// self-suppression competes for the CPU too. A closed loop of bare
// broadcasts outruns the publisher (it coalesces and encodes each key), so
// the outbox sits at its backlog bound and the figure includes the
// enqueuer's share of coalescing; a caller that also does a Set is slower
// than the publisher and pays only the append.
func BenchmarkBroadcastDelete(b *testing.B) {
	keys := keysN("user:", 1<<16)
	for _, bc := range []struct {
		name   string
		driver func(b *testing.B) invalidation.Driver
	}{
		{"discard", func(*testing.B) invalidation.Driver { return discardDriver{} }},
		{"echo", func(b *testing.B) invalidation.Driver {
			bus := memory.NewBus()
			b.Cleanup(func() { _ = bus.Close() })
			return bus.Connect()
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e, err := engine.New(engine.Config{Driver: bc.driver(b)}, discardTarget{})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := e.BroadcastDelete(keys[i&(len(keys)-1)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.StopTimer()
			flush(b, e)
		})
	}
}
