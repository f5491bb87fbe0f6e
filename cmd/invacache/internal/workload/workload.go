package workload

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"time"

	invacache "github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/backend/option"
	"github.com/halilbulentorhon/invacache-go/cmd/invacache/internal/simdb"
	"github.com/halilbulentorhon/invacache-go/invacachetest"
)

// Counters are the workload's totals; safe for concurrent use.
type Counters struct {
	Reads, ReadErrors    atomic.Uint64
	Sets, Deletes, Acks  atomic.Uint64
	WriteErrors, Aborted atomic.Uint64 // Aborted: written but not acknowledged when the run ended
}

// Paced calls fn every period until ctx ends; a slow fn skips ticks.
func Paced(ctx context.Context, period time.Duration, fn func()) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

// Reader reads keys of Zipf popularity at Rate per second.
type Reader struct {
	Cache    invacache.Cache[uint64]
	DB       *simdb.DB
	Check    *invacachetest.Checker
	Counters *Counters
	Rate     int     // reads per second
	Zipf     float64 // key popularity exponent (> 1)
	Seed     uint64
}

// Run reads until ctx ends. Each read is timed from its start and judged by
// Check.
func (r Reader) Run(ctx context.Context) {
	pick := r.DB.ZipfPicker(r.Seed, r.Zipf)
	loader := func(key string) (uint64, time.Duration, error) { return r.DB.Read(key), 0, nil }
	// Reads go in small bursts every 10ms: steady load without a timer per read.
	const tick = 10 * time.Millisecond
	perTick := max(1, r.Rate/int(time.Second/tick))
	Paced(ctx, tick, func() {
		for i := 0; i < perTick; i++ {
			key := pick()
			start := time.Now()
			v, err := r.Cache.GetOrLoad(key, loader)
			if err != nil {
				r.Counters.ReadErrors.Add(1)
				continue
			}
			r.Counters.Reads.Add(1)
			r.Check.Read(key, v, start)
		}
	})
}

// Writer writes keys of Zipf popularity at Rate per second: database write,
// then (under that key's database lock, so the cache sees versions in
// database order) Set with invalidation or Delete with invalidation, then
// Flush; when Flush returns the write is acknowledged to Check.
type Writer struct {
	Cache       invacache.Cache[uint64]
	DB          *simdb.DB
	Check       *invacachetest.Checker
	Counters    *Counters
	Rate        int     // writes per second
	Zipf        float64 // key popularity exponent (> 1)
	Seed        uint64
	DeleteShare float64 // share of writes that Delete instead of Set
	// NoBroadcast writes only the writer's own cache (to show what the
	// staleness check catches without invalidation).
	NoBroadcast bool
	// BeforeCacheWrite, if set, is called just before the cache write
	// (propagation timing starts there).
	BeforeCacheWrite func(key string)
	// OnAck, if set, is called after each acknowledgement.
	OnAck func(key string, version uint64)
}

// Run writes until ctx ends. While the bus is down Flush waits (the outbox
// retries): writes stall, none is lost.
func (w Writer) Run(ctx context.Context) {
	pick := w.DB.ZipfPicker(w.Seed, w.Zipf)
	rng := rand.New(rand.NewPCG(w.Seed, 0x1d))
	Paced(ctx, time.Second/time.Duration(w.Rate), func() {
		key := pick()
		del := rng.Float64() < w.DeleteShare
		var werr error
		v := w.DB.Write(key, func(v uint64) {
			if w.BeforeCacheWrite != nil {
				w.BeforeCacheWrite(key)
			}
			switch {
			case del && !w.NoBroadcast:
				werr = w.Cache.Delete(key, option.WithDeleteInvalidation())
			case del:
				werr = w.Cache.Delete(key)
			case !w.NoBroadcast:
				werr = w.Cache.Set(key, v, option.WithInvalidation())
			default:
				werr = w.Cache.Set(key, v)
			}
		})
		if werr != nil {
			w.Counters.WriteErrors.Add(1)
			return
		}
		if del {
			w.Counters.Deletes.Add(1)
		} else {
			w.Counters.Sets.Add(1)
		}
		if err := w.Cache.Flush(ctx); err != nil {
			w.Counters.Aborted.Add(1) // the run is over
			return
		}
		w.Check.Ack(key, v)
		w.Counters.Acks.Add(1)
		if w.OnAck != nil {
			w.OnAck(key, v)
		}
	})
}
