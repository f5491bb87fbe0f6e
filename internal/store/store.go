package store

import (
	"fmt"
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/monotime"
)

// Config configures a Store.
type Config struct {
	// Capacity is the hard bound on entries (otter's MaximumSize), > 0.
	Capacity int
	// DefaultTTL applies to Set calls with ttl == 0. Zero means such entries
	// never expire. Must not be negative.
	DefaultTTL time.Duration

	clock otter.Clock // tests: otter's time source; nil = monoClock
}

// Stats are cumulative counters of a Store.
type Stats struct {
	Hits        uint64 // Get found a live entry
	Misses      uint64 // Get found nothing, an expired entry, or one from before a Clear
	Evictions   uint64 // entries removed by the policy to stay within Capacity
	Expirations uint64 // entries removed because their TTL ran out
}

// ErrInvalidConfig is config.ErrInvalidConfig; every error from New wraps it.
var ErrInvalidConfig = config.ErrInvalidConfig

// never is the TTL otter is given for an entry that does not expire: its
// deadline saturates to one otter never reaches.
const never = time.Duration(math.MaxInt64)

// item is what the store keeps in otter for one key.
type item[V any] struct {
	v     V
	ttl   time.Duration // > 0; never for no expiry
	epoch uint64        // Store.epoch when written
}

// Store is a bounded, concurrent in-memory cache with per-entry TTL, built on
// otter. The zero value is not usable; call New.
type Store[V any] struct {
	c          *otter.Cache[string, item[V]]
	seed       maphash.Seed  // for KeyHash; read-only
	defaultTTL time.Duration // never when entries do not expire by default; read-only

	// epoch is bumped by Clear; only items carrying the current value are
	// served.
	epoch atomic.Uint64

	hits, misses          stripedCounter
	evictions, expiration atomic.Uint64

	exec executor
}

// New validates cfg and returns an empty store.
func New[V any](cfg Config) (*Store[V], error) {
	if cfg.Capacity <= 0 {
		return nil, fmt.Errorf("store: Capacity (%d) must be positive: %w", cfg.Capacity, ErrInvalidConfig)
	}
	if cfg.DefaultTTL < 0 {
		return nil, fmt.Errorf("store: DefaultTTL (%v) must not be negative: %w", cfg.DefaultTTL, ErrInvalidConfig)
	}
	s := &Store[V]{seed: maphash.MakeSeed(), defaultTTL: cfg.DefaultTTL, hits: newStripedCounter(), misses: newStripedCounter()}
	if s.defaultTTL == 0 {
		s.defaultTTL = never
	}
	clock := cfg.clock
	if clock == nil {
		clock = monoClock{}
	}
	c, err := otter.New(&otter.Options[string, item[V]]{
		MaximumSize: cfg.Capacity,
		// Created and updated entries take the TTL their write asked for;
		// reads leave the deadline alone (writing, not accessing, expiry).
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, item[V]]) time.Duration {
			return e.Value.ttl
		}),
		OnAtomicDeletion: s.onDeletion,
		Executor:         s.exec.run,
		Clock:            clock,
	})
	if err != nil {
		return nil, fmt.Errorf("store: %v: %w", err, ErrInvalidConfig)
	}
	s.c = c
	return s, nil
}

func (s *Store[V]) onDeletion(e otter.DeletionEvent[string, item[V]]) {
	switch e.Cause {
	case otter.CauseOverflow:
		s.evictions.Add(1)
	case otter.CauseExpiration:
		s.expiration.Add(1)
	}
}

// KeyHash returns the store's seeded hash of key, for callers that stripe
// their own per-key state. It does not allocate.
func (s *Store[V]) KeyHash(key string) uint64 {
	return maphash.String(s.seed, key)
}

// Get returns the value stored under key. It never returns an expired entry
// or one written before the last Clear, and does not allocate.
func (s *Store[V]) Get(key string) (V, bool) {
	it, ok := s.c.GetIfPresent(key)
	if ok && it.epoch == s.epoch.Load() {
		s.hits.inc()
		return it.v, true
	}
	s.misses.inc()
	var zero V
	return zero, false
}

// GetAt is Get without counting, that also returns the time of the lookup
// (monotime.Now, read once by otter for the entry's expiry): a caller that
// needs the time too, as the staleness bound does, reads the clock once. It
// counts nothing; the caller reports the outcome with CountHit or
// CountMiss. The time is 0 on a miss.
func (s *Store[V]) GetAt(key string) (v V, now int64, ok bool) {
	e, ok := s.c.GetEntry(key)
	if ok && e.Value.epoch == s.epoch.Load() {
		return e.Value.v, e.SnapshotAtNano, true
	}
	return v, 0, false
}

// CountHit counts a hit found with GetAt.
func (s *Store[V]) CountHit() { s.hits.inc() }

// CountMiss counts a miss found with GetAt.
func (s *Store[V]) CountMiss() { s.misses.inc() }

// Peek is Get without counting a hit or a miss, for a second look at a
// key whose miss was counted already.
func (s *Store[V]) Peek(key string) (V, bool) {
	it, ok := s.c.GetIfPresent(key)
	if ok && it.epoch == s.epoch.Load() {
		return it.v, true
	}
	var zero V
	return zero, false
}

// ttlOf maps a Set ttl to the item's TTL.
func (s *Store[V]) ttlOf(ttl time.Duration) time.Duration {
	switch {
	case ttl == 0:
		return s.defaultTTL
	case ttl < 0:
		return never
	}
	return ttl
}

// Set stores v under key. ttl > 0 is the entry's time to live; 0 means
// Config.DefaultTTL; a negative ttl means the entry never expires. Updating
// an existing key does not allocate.
func (s *Store[V]) Set(key string, v V, ttl time.Duration) {
	// The epoch is read before the write: if a Clear runs in between, the
	// item carries the old epoch and is never served.
	s.c.Set(key, item[V]{v: v, ttl: s.ttlOf(ttl), epoch: s.epoch.Load()})
}

// SetIf stores v under key only if ok returns true, and reports whether it
// stored. ok runs under the key's bucket lock, so no Set or Delete of that
// key can interleave with the check and the write; it must be fast, must
// not panic and must not call back into the Store. A nil ok always stores.
func (s *Store[V]) SetIf(key string, v V, ttl time.Duration, ok func() bool) bool {
	if ok == nil {
		s.Set(key, v, ttl)
		return true
	}
	it := item[V]{v: v, ttl: s.ttlOf(ttl), epoch: s.epoch.Load()}
	stored := false
	s.c.Compute(key, func(old item[V], _ bool) (item[V], otter.ComputeOp) {
		if !ok() {
			return old, otter.CancelOp
		}
		stored = true
		return it, otter.WriteOp
	})
	return stored
}

// Delete removes key and reports whether a live entry was removed.
func (s *Store[V]) Delete(key string) bool {
	it, ok := s.c.Invalidate(key)
	return ok && it.epoch == s.epoch.Load()
}

// Clear removes every entry: nothing stored before the call is served after
// it, also when writes race it. Counters are kept.
func (s *Store[V]) Clear() {
	s.epoch.Add(1)
	s.c.InvalidateAll()
}

// Len runs otter's pending maintenance (evictions, expirations) and returns
// the number of entries held, which then never exceeds Capacity. It may
// include entries that expired since, or that a concurrent Clear left.
func (s *Store[V]) Len() int {
	s.c.CleanUp()
	return s.c.EstimatedSize()
}

// Stats returns the cumulative counters.
func (s *Store[V]) Stats() Stats {
	return Stats{
		Hits:        s.hits.sum(),
		Misses:      s.misses.sum(),
		Evictions:   s.evictions.Load(),
		Expirations: s.expiration.Load(),
	}
}

// Close stops otter's periodic clean-up goroutine and waits for every
// maintenance goroutine the store started. It is idempotent. The store stays
// usable; its maintenance then runs on the calling goroutine.
func (s *Store[V]) Close() {
	s.c.StopAllGoroutines()
	s.exec.close()
}

// monoClock is otter's time source: the project's one monotonic time base,
// so the time otter reads for an entry's expiry serves the staleness bound
// too (GetAt).
type monoClock struct{}

func (monoClock) NowNano() int64 { return monotime.Now() }

// Tick drives otter's periodic clean-up goroutine, which Close stops; the
// ticker is collected once that goroutine no longer holds its channel.
func (monoClock) Tick(d time.Duration) <-chan time.Time { return time.Tick(d) }

// executor runs otter's tasks on goroutines it counts, so Close can wait for
// them; after close it runs them on the caller's goroutine.
type executor struct {
	mu     sync.Mutex
	closed bool // guarded by mu
	wg     sync.WaitGroup
}

func (e *executor) run(fn func()) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		fn()
		return
	}
	e.wg.Add(1)
	e.mu.Unlock()
	go func() {
		defer e.wg.Done()
		fn()
	}()
}

func (e *executor) close() {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	e.wg.Wait()
}
