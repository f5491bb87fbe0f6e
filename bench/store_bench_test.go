package bench

import (
	"math/rand/v2"
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
	tpArrayLen  = 1 << 15 // the all-cached shape: keys, and capacity
	tpTTL       = time.Hour
)

// tpShape is a key stream with the capacity it is measured at.
type tpShape struct {
	name     string
	stream   func() []string
	capacity int
}

var (
	shapeZipf = tpShape{"Zipf 1.01 over 1M keys, capacity 100k", throughputStream, tpCapacity}
	// shapeArray is otter's own benchmark shape: every key cached, so every
	// Get is a hit.
	shapeArray = tpShape{"2^15-key array, capacity 2^15 (all cached)", arrayStream, tpArrayLen}
)

// tpRow is one throughput experiment: a shape, the goroutines per CPU
// (testing.B.SetParallelism), the operation mix (setEvery 0 = only Get, 4 =
// every 4th op is a Set, 1 = only Set) and the TTL of every entry (0 = none:
// InvaCache without a default TTL, raw otter without an ExpiryCalculator).
type tpRow struct {
	name     string
	shape    *tpShape
	par      int
	setEvery int
	ttl      time.Duration
	impls    []string
	target   string // the goal for the ratio to otter; "-" for none
}

// tpRows are the report's throughput rows (GOMAXPROCS 2: par 1 = 2
// goroutines, par 4 = 8). The targets are issue 19's.
var tpRows = []tpRow{
	{"Get, array (all hits), no TTL, 2 goroutines", &shapeArray, 1, 0, 0, implNames, ">= 0.95x"},
	{"Get, Zipf, no TTL, 2 goroutines", &shapeZipf, 1, 0, 0, implNames, ">= 0.95x"},
	{"Get, Zipf, no TTL, 8 goroutines", &shapeZipf, 4, 0, 0, implNames, ">= 0.95x"},
	{"Get with invalidation on, array, no TTL, 2 goroutines", &shapeArray, 1, 0, 0, []string{"invacache+bus", "otter"}, ">= 0.9x"},
	{"Get with invalidation on, Zipf, no TTL, 2 goroutines", &shapeZipf, 1, 0, 0, []string{"invacache+bus", "otter"}, ">= 0.9x"},
	{"75% Get / 25% Set, Zipf, no TTL, 2 goroutines", &shapeZipf, 1, 4, 0, implNames, ">= 0.9x"},
	// otter boxes an updated value of more than one word; raw otter with
	// int values updates in place, InvaCache's entries (value, lifetime,
	// clear epoch) are always boxed on update. With string values both box.
	{"75% Get / 25% Set, string values, Zipf, no TTL, 2 goroutines", &shapeZipf, 1, 4, 0, []string{"invacache/string", "otter/string"}, "-"},
	{"100% Set, Zipf, no TTL, 2 goroutines", &shapeZipf, 1, 1, 0, implNames, "-"},
	// With a default TTL both InvaCache and raw otter (ExpiryWriting) read
	// the clock on every operation.
	{"Get, array (all hits), TTL 1h, 2 goroutines", &shapeArray, 1, 0, tpTTL, implNames, "-"},
	{"Get with invalidation on, array, TTL 1h, 2 goroutines", &shapeArray, 1, 0, tpTTL, []string{"invacache+bus", "otter"}, "-"},
	{"75% Get / 25% Set, Zipf, TTL 1h, 2 goroutines", &shapeZipf, 1, 4, tpTTL, implNames, "-"},
}

var (
	tpStreamOnce sync.Once
	tpStream     []string
	tpArrayOnce  sync.Once
	tpArray      []string
)

func throughputStream() []string {
	tpStreamOnce.Do(func() { tpStream = zipfStream(tpStreamLen, tpKeySpace, tpZipfS, 42) })
	return tpStream
}

// arrayStream is the 2^15 keys in a random order.
func arrayStream() []string {
	tpArrayOnce.Do(func() {
		ranks := rand.New(rand.NewPCG(3, 4)).Perm(tpArrayLen)
		tpArray = keysOf(ranks)
	})
	return tpArray
}

// prefill replays the stream once read-through, so the cache is full and
// its policy has seen the distribution before measuring.
func prefill(c storeImpl, stream []string) {
	for i, k := range stream {
		if _, ok := c.Get(k); !ok {
			c.Set(k, i)
		}
	}
	_ = c.Len() // ristretto: wait for its buffers to drain; otter/InvaCache: run maintenance
}

// runThroughput drives c from par x GOMAXPROCS goroutines, each walking the
// stream from its own offset.
func runThroughput(b *testing.B, c storeImpl, stream []string, par, setEvery int) {
	mask := len(stream) - 1
	var starts atomic.Uint64
	b.ReportAllocs()
	b.SetParallelism(par)
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

// BenchmarkStoreThroughput runs every implementation adjacently per row. For the report's figures use
// TestStoreReport; for a quick look:
//
//	cd bench && go test -run '^$' -bench StoreThroughput -cpu 2 .
func BenchmarkStoreThroughput(b *testing.B) {
	for _, row := range tpRows {
		b.Run(row.name, func(b *testing.B) {
			for _, name := range row.impls {
				c := newImpl(name, row.shape.capacity, row.ttl)
				prefill(c, row.shape.stream())
				b.Run(name, func(b *testing.B) { runThroughput(b, c, row.shape.stream(), row.par, row.setEvery) })
				c.Close()
			}
		})
	}
}
