package workload

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"time"

	invacache "github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/backend/option"
)

// DB is the source of truth the workload reads and writes: *simdb.DB in
// one process, or a client of it in a chaos node process.
type DB interface {
	// Read returns the key's current version.
	Read(key string) uint64
	// Write increments the key's version and calls then with it while the
	// key's write lock is held; it returns the new version.
	Write(key string, then func(version uint64)) uint64
	// ZipfPicker returns a key picker of Zipf popularity (not safe for
	// concurrent use).
	ZipfPicker(seed uint64, s float64) func() string
}

// Judge judges reads and records acknowledged writes: *invacachetest.Checker in
// one process, or a reporter to it in a chaos node process.
type Judge interface {
	// Read judges a read of key that started at start and returned version.
	Read(key string, version uint64, start time.Time) bool
	// Ack records that version of key is acknowledged now.
	Ack(key string, version uint64)
}

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
	DB       DB
	Check    Judge
	Counters *Counters
	Rate     int     // reads per second
	Zipf     float64 // key popularity exponent (> 1)
	Seed     uint64
	// Outage, when set, judges the reads of a burst during which the node
	// served reads past MaxStaleness (under OutageStaleness) against its
	// Bound instead of Check's.
	Outage *OutageBound
}

// OutageBound is how a Reader judges reads served under OutageStaleness.
type OutageBound struct {
	Bound time.Duration // OutageStaleness plus the publish window and slack
	// Reads is the node's count of reads served past MaxStaleness
	// (Stats().Invalidation.OutageReads), read around each burst.
	Reads func() uint64
	// Judge judges one read against bound.
	Judge func(key string, version uint64, start time.Time, bound time.Duration) bool
	// Judged counts the reads judged against Bound.
	Judged *atomic.Uint64
}

// Run reads until ctx ends. Each read is timed from its start and judged by
// Check, or by Outage when the node served a read of the burst past
// MaxStaleness (the whole burst then gets the outage bound: a burst lasts
// well under a millisecond, and the node's bound changes far less often).
func (r Reader) Run(ctx context.Context) {
	pick := r.DB.ZipfPicker(r.Seed, r.Zipf)
	loader := func(key string) (uint64, time.Duration, error) { return r.DB.Read(key), 0, nil }
	// Reads go in small bursts every 10ms: steady load without a timer per read.
	const tick = 10 * time.Millisecond
	perTick := max(1, r.Rate/int(time.Second/tick))
	type read struct {
		key   string
		v     uint64
		start time.Time
	}
	burst := make([]read, 0, perTick)
	Paced(ctx, tick, func() {
		var before uint64
		if r.Outage != nil {
			before = r.Outage.Reads()
		}
		burst = burst[:0]
		for i := 0; i < perTick; i++ {
			key := pick()
			start := time.Now()
			v, err := r.Cache.GetOrLoad(key, loader)
			if err != nil {
				r.Counters.ReadErrors.Add(1)
				continue
			}
			r.Counters.Reads.Add(1)
			burst = append(burst, read{key, v, start})
		}
		outage := r.Outage != nil && r.Outage.Reads() != before
		for _, rd := range burst {
			if outage {
				r.Outage.Judge(rd.key, rd.v, rd.start, r.Outage.Bound)
				r.Outage.Judged.Add(1)
			} else {
				r.Check.Read(rd.key, rd.v, rd.start)
			}
		}
	})
}

// Writer writes keys of Zipf popularity at Rate per second: database write,
// then (under that key's database lock, so the cache sees versions in
// database order) Set with invalidation or Delete with invalidation, then
// Flush; when Flush returns the write is acknowledged to Check.
type Writer struct {
	Cache       invacache.Cache[uint64]
	DB          DB
	Check       Judge
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
