package bench

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Throughput workload parameters (see STORE_RESULTS.md).
const (
	tpStreamLen = 1 << 20   // pre-generated Zipf stream (power of two)
	tpKeySpace  = 1_000_000 // distinct ranks the stream draws from
	tpZipfS     = 1.01
	tpCapacity  = 100_000
	tpTTL       = time.Hour // every entry carries a deadline
)

// workloads: setEvery 0 = only Get, 4 = every 4th op is a Set, 1 = only Set.
var workloads = []struct {
	name     string
	setEvery int
}{
	{"get100", 0},
	{"get75set25", 4},
	{"set100", 1},
}

var (
	tpStreamOnce sync.Once
	tpStream     []string
)

func throughputStream() []string {
	tpStreamOnce.Do(func() { tpStream = zipfStream(tpStreamLen, tpKeySpace, tpZipfS, 42) })
	return tpStream
}

// prefill replays the stream once read-through, so the cache is full and
// its policy has seen the distribution before measuring.
func prefill(c storeImpl, stream []string) {
	for i, k := range stream {
		if _, ok := c.Get(k); !ok {
			c.Set(k, i)
		}
	}
	_ = c.Len() // ristretto: wait for its buffers to drain
}

// runThroughput drives c from GOMAXPROCS goroutines (parallelism 1), each
// walking the stream from its own offset.
func runThroughput(b *testing.B, c storeImpl, stream []string, setEvery int) {
	mask := len(stream) - 1
	var starts atomic.Uint64
	b.ReportAllocs()
	b.SetParallelism(1)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(starts.Add(1)*0x9E3779B97F4A7C15>>1) & mask
		for pb.Next() {
			runOps(c, stream, i, 1, setEvery)
			i++
		}
	})
}

// runOps performs n operations starting at stream position i: a Set every
// setEvery-th operation (by position), Gets otherwise.
func runOps(c storeImpl, stream []string, i, n, setEvery int) {
	mask := len(stream) - 1
	for end := i + n; i < end; i++ {
		k := stream[i&mask]
		if setEvery == 1 || (setEvery > 0 && i%setEvery == 0) {
			c.Set(k, i)
		} else {
			c.Get(k)
		}
	}
}

// BenchmarkStoreThroughput runs every implementation adjacently per
// workload. Use -cpu 2 for the 2-goroutine figures in the report.
func BenchmarkStoreThroughput(b *testing.B) {
	stream := throughputStream()
	for _, w := range workloads {
		b.Run(w.name, func(b *testing.B) {
			for _, name := range implNames {
				c := newImpl(name, tpCapacity, tpTTL)
				prefill(c, stream)
				b.Run(name, func(b *testing.B) { runThroughput(b, c, stream, w.setEvery) })
				c.Close()
			}
		})
	}
}
