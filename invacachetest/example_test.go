package invacachetest_test

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/halilbulentorhon/invacache-go/backend/option"
	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/invacachetest"
)

// db is a versioned source of truth: each write of a key bumps its version.
type db struct {
	mu sync.Mutex
	v  map[string]uint64
}

func (d *db) write(key string) uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.v[key]++
	return d.v[key]
}

func (d *db) read(key string) uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.v[key]
}

// Check a write path (database, then Delete with invalidation, then Flush)
// and a read path (GetOrLoad on another replica) against the staleness
// bound, with a fault in the middle. In a test, use NewCluster(t, ...) and
// checker.Verify(t) instead of StartCluster and printing.
func Example() {
	const maxStaleness = 300 * time.Millisecond
	cluster, err := invacachetest.StartCluster[uint64](2, config.InvaCacheConfig{
		Invalidation: &config.InvalidationConfig{MaxStaleness: maxStaleness},
	})
	if err != nil {
		panic(err)
	}
	defer cluster.Close()
	writer, reader := cluster.Node(0), cluster.Node(1)
	checker := invacachetest.NewChecker(invacachetest.Bound{
		MaxStaleness:  maxStaleness,
		PublishWindow: 100 * time.Millisecond,
		Slack:         time.Second, // a loaded test machine
	})
	source := &db{v: map[string]uint64{}}

	write := func(key string) {
		v := source.write(key)
		writer.Delete(key, option.WithDeleteInvalidation())
		if err := writer.Flush(context.Background()); err != nil {
			return // not acknowledged
		}
		checker.Ack(key, v) // acknowledged: the bound starts now
	}
	read := func(key string) {
		start := time.Now()
		v, err := reader.GetOrLoad(key, func(key string) (uint64, time.Duration, error) {
			return source.read(key), 0, nil
		})
		if err == nil {
			checker.Read(key, v, start)
		}
	}

	for i := range 20 {
		if i == 10 {
			reader.Drop(1) // the reader loses the next invalidation...
		}
		write("user:1")
		read("user:1") // a stale read within the bound is allowed
		// the next invalidation reveals the gap: the reader catches up or clears
	}
	fmt.Println("reads:", checker.Reads(), "stale:", checker.Stale())
	// Output:
	// reads: 20 stale: 0
}
