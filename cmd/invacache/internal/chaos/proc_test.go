package chaos

import (
	"sync"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go/cmd/invacache/internal/simdb"
	"github.com/halilbulentorhon/invacache-go/invacachetest"
)

// A read reported by one node process must wait for the other nodes'
// reports: an acknowledgement that another node made long before the read
// started, but reported after it, still makes the read stale.
func TestRemoteJudgeHoldsReadsUntilEveryNodeReported(t *testing.T) {
	b := invacachetest.Bound{MaxStaleness: time.Second}
	chk := invacachetest.NewChecker(b)
	j := newRemoteJudge(chk, b.Total(), 2)
	t0 := time.Unix(1000, 0)
	j.watermark(0, t0.Add(10*time.Second).UnixNano())
	j.watermark(1, t0.UnixNano())

	// Node 0 read version 1 at t0+5s; node 1 acknowledged version 2 at
	// t0+1s but has not reported past t0 yet.
	j.read("k", 1, t0.Add(5*time.Second))
	if got := chk.Reads(); got != 0 {
		t.Fatalf("reads judged before node 1 reported = %d, want 0 (held back)", got)
	}
	j.chk.AckAt("k", 2, t0.Add(time.Second))
	j.watermark(1, t0.Add(5*time.Second).UnixNano())
	if got, want := chk.Reads(), uint64(1); got != want {
		t.Fatalf("reads judged after node 1's watermark = %d, want %d", got, want)
	}
	if got, want := chk.Stale(), uint64(1); got != want {
		t.Errorf("stale reads = %d, want %d (version 2 was acknowledged 4s before the read)", got, want)
	}

	// A node that is gone no longer holds reads back.
	j.watermark(1, -1)
	j.watermark(0, t0.Add(30*time.Second).UnixNano())
	j.read("k", 2, t0.Add(20*time.Second))
	if got, want := chk.Reads(), uint64(2); got != want {
		t.Errorf("reads judged with node 1 gone = %d, want %d", got, want)
	}
}

// A node process's database write holds the key's lock in the run's
// database until the node's cache write is done.
func TestDBServerHoldsKeyLockDuringCacheWrite(t *testing.T) {
	db := simdb.New(keyPrefix, 4, 0)
	srv, err := serveDB(db)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.close()
	cl, err := dialDB(srv.addr(), 4, 2, func() { t.Error("database client failed") })
	if err != nil {
		t.Fatal(err)
	}
	defer cl.close()

	inCacheWrite := make(chan struct{})
	release := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if got, want := cl.Write("key:1", func(uint64) { close(inCacheWrite); <-release }), uint64(1); got != want {
			t.Errorf("first Write = %d, want %d", got, want)
		}
	}()
	<-inCacheWrite
	second := make(chan uint64)
	go func() { second <- cl.Write("key:1", func(uint64) {}) }()
	select {
	case v := <-second:
		t.Fatalf("second Write returned %d while the first held the key's lock", v)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if got, want := <-second, uint64(2); got != want {
		t.Errorf("second Write = %d, want %d", got, want)
	}
	wg.Wait()
	if got, want := cl.Read("key:1"), uint64(2); got != want {
		t.Errorf("Read = %d, want %d", got, want)
	}
}
