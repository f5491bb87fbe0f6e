package invacache_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/invalidation/drivers/memory"
)

// newBenchCache returns a filled cache with a default TTL of 1h, local or
// attached to an in-process bus, so that the two can be compared in one run.
func newBenchCache(tb testing.TB, withBus bool) (invacache.Cache[int], []string) {
	tb.Helper()
	return newBenchCacheTTL(tb, withBus, "1h")
}

// newBenchCacheTTL is newBenchCache with the default TTL ttl ("" for none).
func newBenchCacheTTL(tb testing.TB, withBus bool, ttl string) (invacache.Cache[int], []string) {
	tb.Helper()
	cfg := config.InvaCacheConfig{Backend: mem(config.InMemoryConfig{Capacity: 100_000, Ttl: ttl})}
	if withBus {
		bus := memory.NewBus()
		conn := bus.Connect()
		tb.Cleanup(func() { conn.Close(); bus.Close() })
		cfg.Invalidation = &config.InvalidationConfig{Driver: conn}
	}
	c, err := invacache.NewCache[int](cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	keys := make([]string, 10_000)
	for i := range keys {
		keys[i] = "key:" + strconv.Itoa(i)
		c.Set(keys[i], i)
	}
	return c, keys
}

// BenchmarkGet compares Get on a local cache with Get on a cache attached to
// a bus: invalidation adds loads of the serving flag and deadline, and one
// clock read per hit.
//
//	go test -run '^$' -bench 'BenchmarkGet$' -count 6 . | benchstat -col /bus -
func BenchmarkGet(b *testing.B) {
	for _, withBus := range []bool{false, true} {
		b.Run("bus="+strconv.FormatBool(withBus), func(b *testing.B) {
			c, keys := newBenchCache(b, withBus)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if _, err := c.Get(keys[i%len(keys)]); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
		})
	}
}

// Get allocates nothing, with or without a bus and a default TTL: a count,
// not a timing.
func TestGetDoesNotAllocate(t *testing.T) {
	for _, withBus := range []bool{false, true} {
		for _, ttl := range []string{"1h", ""} {
			c, keys := newBenchCacheTTL(t, withBus, ttl)
			hit := testing.AllocsPerRun(1000, func() { c.Get(keys[7]) })
			miss := testing.AllocsPerRun(1000, func() { c.Get("absent") })
			if hit != 0 || miss != 0 {
				t.Errorf("bus=%v ttl=%q: allocations per Get hit/miss = %v/%v, want 0/0", withBus, ttl, hit, miss)
			}
		}
	}
}

// A plain Set of an existing key allocates only the box otter keeps a
// replaced value in (the store's entry, value plus TTL and clear epoch, is
// larger than the word otter updates in place); a plain Delete allocates
// nothing.
func TestSetExistingKeyAllocatesAtMostTheValueBox(t *testing.T) {
	c, keys := newBenchCache(t, false)
	if got := testing.AllocsPerRun(1000, func() { c.Set(keys[7], 7) }); got > 1 {
		t.Errorf("allocations per Set of an existing key = %v, want <= 1", got)
	}
	if got := testing.AllocsPerRun(1000, func() { c.Delete("absent") }); got != 0 {
		t.Errorf("allocations per plain Delete = %v, want 0", got)
	}
}

// BenchmarkGetOrLoadMiss is the load path: a GetOrLoad of a key the cache
// does not hold, whose loader returns at once without caching (ttl < 0), so
// every call registers a flight and runs the loader. "ctx=cancellable" is a
// GetOrLoadContext whose context can end: its load runs on a goroutine of
// its own so that the caller can leave while others wait.
//
//	go test -run '^$' -bench 'BenchmarkGetOrLoadMiss' -count 6 .
func BenchmarkGetOrLoadMiss(b *testing.B) {
	loader := func(context.Context, string) (int, time.Duration, error) { return 1, -1, nil }
	for _, name := range []string{"background", "cancellable"} {
		b.Run("ctx="+name, func(b *testing.B) {
			c, _ := newBenchCache(b, false)
			ctx := context.Background()
			if name == "cancellable" {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				defer cancel()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := c.GetOrLoadContext(ctx, "absent", loader); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
