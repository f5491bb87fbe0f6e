package engine

import (
	"context"
	"testing"

	"github.com/halilbulentorhon/invacache-go/internal/wire"
	"github.com/halilbulentorhon/invacache-go/invalidation"
)

// nopDriver accepts everything and delivers nothing.
type nopDriver struct{}

func (nopDriver) Publish(context.Context, [][]byte) error { return nil }
func (nopDriver) Subscribe(invalidation.Handler, invalidation.SubscribeOptions) (invalidation.Subscription, error) {
	return nopSub{}, nil
}
func (nopDriver) Close() error { return nil }

type nopSub struct{}

func (nopSub) Close() error { return nil }

type nopTarget struct{}

func (nopTarget) InvalidateKeys([]string) {}
func (nopTarget) InvalidateAll()          {}

// Well-formed messages from endless random origins must not grow memory,
// and an origin heard from recently keeps its baseline.
func TestOriginTableBounded(t *testing.T) {
	e, err := New(Config{Driver: nopDriver{}}, nopTarget{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	h := handler{e}
	const steady = 1
	var buf []byte
	send := func(origin, seq uint64) {
		buf = wire.AppendMessage(buf[:0], wire.Message{Origin: origin, Seq: seq, Ops: []wire.Op{{Keys: []string{"k"}}}})
		h.HandleMessage(buf)
	}
	for i := uint64(0); i < 5*MaxOrigins; i++ {
		send(1000+i, 1)
		send(steady, i+1) // keeps talking, in sequence
		if n := len(e.origins); n > MaxOrigins {
			t.Fatalf("after %d origins the table holds %d, want <= %d", i+1, n, MaxOrigins)
		}
	}
	if gaps := e.Stats().Gaps; gaps != 0 {
		t.Errorf("Gaps = %d, want 0 (the steady origin never skipped and was never evicted)", gaps)
	}
}
