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
	e, send := originEngine(t)
	const steady = 1
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

// A flood of valid envelopes from random origins evicts a real but quiet
// origin from the bounded table: its next message may follow a loss the
// table can no longer see, so it counts as a gap (issue 10, suspected:
// eviction hid the gap).
func TestEvictedOriginNextMessageIsGap(t *testing.T) {
	e, send := originEngine(t)
	const quiet = 7
	send(quiet, 1)
	for i := uint64(0); i < MaxOrigins; i++ {
		send(1000+i, 1) // new senders: their first message, no gap
	}
	if _, ok := e.origins[quiet]; ok {
		t.Fatal("the quiet origin is still in the table after the flood; the test does not evict it")
	}
	if gaps := e.Stats().Gaps; gaps != 0 {
		t.Fatalf("Gaps = %d after new origins' first messages, want 0", gaps)
	}
	send(quiet, 3) // seq 2 was lost while the origin was forgotten
	if gaps := e.Stats().Gaps; gaps != 1 {
		t.Errorf("Gaps = %d after an evicted origin skipped a sequence number, want 1", gaps)
	}
}

// originEngine returns an engine closed at the end of the test and a func
// that hands it a one-key envelope from origin with seq.
func originEngine(t *testing.T) (*Engine, func(origin, seq uint64)) {
	t.Helper()
	e, err := New(Config{Driver: nopDriver{}}, nopTarget{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	h := handler{e}
	var buf []byte
	return e, func(origin, seq uint64) {
		buf = wire.AppendMessage(buf[:0], wire.Message{Origin: origin, Seq: seq, Ops: []wire.Op{{Keys: []string{"k"}}}})
		h.HandleMessage(buf)
	}
}
