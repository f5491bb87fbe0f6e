package bench

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go/backend/option"
)

func optDeleteBroadcast() option.DelOptFnc { return option.WithDeleteInvalidation() }

// BenchmarkPropagationLatency reports one-way latency percentiles of a
// broadcast Delete (A → Redis → applied on B) next to a raw go-redis
// PUBLISH → subscriber receive, sampled alternately in the same run.
func BenchmarkPropagationLatency(b *testing.B) {
	e := newPropEnv(b, true)
	defer e.close()
	raw, cache := latencySamples(b, e, b.N, 100)
	b.ReportMetric(float64(pct(raw, 50).Microseconds()), "raw-p50-µs")
	b.ReportMetric(float64(pct(raw, 99).Microseconds()), "raw-p99-µs")
	b.ReportMetric(float64(pct(cache, 50).Microseconds()), "cache-p50-µs")
	b.ReportMetric(float64(pct(cache, 99).Microseconds()), "cache-p99-µs")
}

// latencySamples takes n alternating raw/cache samples after warm ones.
func latencySamples(tb testing.TB, e *propEnv, n, warm int) (raw, cache []time.Duration) {
	tb.Helper()
	ctx := context.Background()
	e.drain()
	raw = make([]time.Duration, 0, n)
	cache = make([]time.Duration, 0, n)
	for i := 0; i < warm+n; i++ {
		r, c, err := e.latencyPair(ctx, "user:"+strconv.Itoa(i%1000))
		if err != nil {
			tb.Fatal(err)
		}
		if i >= warm {
			raw = append(raw, r)
			cache = append(cache, c)
		}
	}
	return raw, cache
}

// pct returns the p-th percentile (nearest rank).
func pct(xs []time.Duration, p float64) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(p/100*float64(len(s)) + 0.5)
	return s[min(max(i-1, 0), len(s)-1)]
}

// BenchmarkPropagationThroughput reports invalidated keys per second
// delivered to a peer when many goroutines broadcast distinct keys (the
// engine coalesces them into few large messages).
func BenchmarkPropagationThroughput(b *testing.B) {
	e := newPropEnv(b, true)
	defer e.close()
	keys := distinctKeys(b.N)
	b.ResetTimer()
	r := broadcastThroughput(b, e, keys, 8)
	b.StopTimer()
	b.ReportMetric(r.keysPerSec, "keys/s")
	b.ReportMetric(float64(r.messages), "messages")
}

// BenchmarkPropagationRawPublishPerKey is the baseline: one PUBLISH per key,
// one at a time.
func BenchmarkPropagationRawPublishPerKey(b *testing.B) {
	e := newPropEnv(b, true)
	defer e.close()
	b.ResetTimer()
	kps := rawPerKeyThroughput(b, e, b.N)
	b.StopTimer()
	b.ReportMetric(kps, "keys/s")
}

func distinctKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "user:" + strconv.Itoa(i)
	}
	return keys
}

type tpResult2 struct {
	keysPerSec float64
	messages   uint64
	elapsed    time.Duration
	clears     uint64 // B's whole-cache clears on a gap during the attempt
	voided     int    // attempts discarded because B lost its link
}

// broadcastThroughput deletes keys (with broadcast) on A from g goroutines
// and times until B has received every message A sent. An attempt during
// which B lost its subscription (an overloaded machine can delay PONGs past
// the dead-link timeout) is discarded and run again, up to 3 times: the
// messages published meanwhile are gone, B cleared instead.
func broadcastThroughput(tb testing.TB, e *propEnv, keys []string, g int) tpResult2 {
	tb.Helper()
	for voided := 0; ; voided++ {
		r, ok := broadcastAttempt(tb, e, keys, g)
		if ok {
			r.voided = voided
			return r
		}
		if voided == 2 {
			tb.Fatalf("B lost its subscription in 3 throughput attempts in a row\nB: %+v", e.b.Stats().Invalidation)
		}
	}
}

// broadcastAttempt is one try of broadcastThroughput; false when B lost its
// link meanwhile.
func broadcastAttempt(tb testing.TB, e *propEnv, keys []string, g int) (tpResult2, bool) {
	tb.Helper()
	// Settle earlier traffic first: A counts a message as sent when Redis
	// acknowledged it, which can be after B already received it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.a.Flush(ctx); err != nil {
		tb.Fatal(err)
	}
	links := e.bLinkUps.Load()
	before := e.a.Stats().Invalidation
	bBefore := e.b.Stats().Invalidation
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < g; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			opt := option.WithDeleteInvalidation()
			for i := w; i < len(keys); i += g {
				_ = e.a.Delete(keys[i], opt)
			}
		}(w)
	}
	wg.Wait()
	if err := e.a.Flush(ctx); err != nil {
		tb.Fatal(err)
	}
	after := e.a.Stats().Invalidation
	sent := after.MessagesSent - before.MessagesSent
	deadline := time.Now().Add(time.Minute)
	for e.b.Stats().Invalidation.MessagesReceived-bBefore.MessagesReceived < sent {
		if e.bLinkUps.Load() != links {
			return tpResult2{}, false
		}
		if time.Now().After(deadline) {
			tb.Fatalf("peer received %d of %d messages\nA: %+v\nB: %+v", e.b.Stats().Invalidation.MessagesReceived-bBefore.MessagesReceived, sent,
				after, e.b.Stats().Invalidation)
		}
		time.Sleep(50 * time.Microsecond)
	}
	elapsed := time.Since(start)
	if e.bLinkUps.Load() != links {
		return tpResult2{}, false
	}
	keysSent := after.KeysSent - before.KeysSent
	if keysSent < uint64(len(keys)) {
		tb.Fatalf("A sent %d keys, want %d (distinct keys must not be coalesced away)", keysSent, len(keys))
	}
	return tpResult2{keysPerSec: float64(keysSent) / elapsed.Seconds(), messages: sent, elapsed: elapsed,
		clears: e.b.Stats().Invalidation.ClearsOnGap - bBefore.ClearsOnGap}, true
}

// rawPerKeyThroughput publishes n keys one PUBLISH at a time and times until
// the raw subscriber received them all.
func rawPerKeyThroughput(tb testing.TB, e *propEnv, n int) float64 {
	tb.Helper()
	ctx := context.Background()
	base := e.rawCount.Load()
	start := time.Now()
	for i := 0; i < n; i++ {
		if err := e.publishRaw(ctx, e.rawCountCh, "user:"+strconv.Itoa(i)); err != nil {
			tb.Fatal(err)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for e.rawCount.Load()-base < int64(n) {
		if time.Now().After(deadline) {
			tb.Fatalf("raw subscriber received %d of %d", e.rawCount.Load()-base, n)
		}
		time.Sleep(50 * time.Microsecond)
	}
	return float64(n) / time.Since(start).Seconds()
}

// BenchmarkPropagationSetPlain and BenchmarkPropagationSetBroadcast compare
// what a caller pays for Set with and without WithInvalidation on a cache
// attached to Redis (the broadcast is an enqueue; the network is the
// publisher goroutine's business).
func BenchmarkPropagationSetPlain(b *testing.B) {
	e := newPropEnv(b, false)
	defer e.close()
	setLoop(b, e, false)
}

func BenchmarkPropagationSetBroadcast(b *testing.B) {
	e := newPropEnv(b, false)
	defer e.close()
	setLoop(b, e, true)
}

const setKeySpace = 1 << 16

var setKeys = distinctKeys(setKeySpace)

func setLoop(b *testing.B, e *propEnv, broadcast bool) {
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := setKeys[i&(setKeySpace-1)]
		if broadcast {
			_ = e.a.Set(k, "v", option.WithInvalidation())
		} else {
			_ = e.a.Set(k, "v")
		}
	}
	b.StopTimer()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.a.Flush(ctx); err != nil {
		b.Fatal(err)
	}
}

// fmtDur formats a latency in µs with one decimal.
func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.1f µs", float64(d.Nanoseconds())/1e3)
}
