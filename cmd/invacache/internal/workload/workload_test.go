package workload_test

import (
	"context"
	"testing"
	"time"

	invacache "github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/cmd/invacache/internal/simdb"
	"github.com/halilbulentorhon/invacache-go/cmd/invacache/internal/workload"
	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
	"github.com/halilbulentorhon/invacache-go/invacachetest"
)

// One local cache: reads and writes flow, nothing is stale (the writer's
// own cache always holds the newest version or nothing).
func TestReaderWriter(t *testing.T) {
	leakcheck.Check(t)
	c, err := invacache.NewCache[uint64](config.InvaCacheConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	db := simdb.New("k", 20, 0)
	chk := invacachetest.NewChecker(invacachetest.Bound{})
	var cnt workload.Counters
	acks := 0
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() {
		workload.Reader{Cache: c, DB: db, Check: chk, Counters: &cnt, Rate: 1000, Zipf: 1.1, Seed: 1}.Run(ctx)
		done <- struct{}{}
	}()
	go func() {
		workload.Writer{Cache: c, DB: db, Check: chk, Counters: &cnt, Rate: 200, Zipf: 1.1, Seed: 2,
			DeleteShare: 0.5, OnAck: func(string, uint64) { acks++ }}.Run(ctx)
		done <- struct{}{}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for cnt.Acks.Load() < 20 || cnt.Reads.Load() < 100 {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: %d acks, %d reads", cnt.Acks.Load(), cnt.Reads.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	<-done
	if got, want := uint64(acks), cnt.Acks.Load(); got != want {
		t.Errorf("OnAck called %d times, Acks = %d", got, want)
	}
	if got := cnt.Sets.Load() + cnt.Deletes.Load(); got != db.Writes() {
		t.Errorf("Sets+Deletes = %d, database writes %d", got, db.Writes())
	}
	if chk.Stale() != 0 || cnt.ReadErrors.Load() != 0 || cnt.WriteErrors.Load() != 0 {
		t.Errorf("stale %d, read errors %d, write errors %d; want 0 (%s)", chk.Stale(), cnt.ReadErrors.Load(), cnt.WriteErrors.Load(), chk.FirstStale())
	}
}
