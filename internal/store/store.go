package store

import (
	"fmt"
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

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
	v V
	// exp is the entry's lifetime. In an expiring store (a default TTL) it
	// is minus the TTL otter's ExpiryCalculator reads (-never for no
	// expiry). Otherwise it is the deadline on the store's clock that Get
	// checks, or 0 for none. So Get checks a deadline iff exp > 0.
	exp   int64
	epoch uint64 // Store.epoch when written
}

// Store is a bounded, concurrent in-memory cache with per-entry TTL, built on
// otter. The zero value is not usable; call New.
type Store[V any] struct {
	c    *otter.Cache[string, item[V]]
	seed maphash.Seed // for KeyHash; read-only
	// expiring: otter runs expiry (the store has a default TTL). Read-only.
	expiring   bool
	defaultTTL time.Duration // never when entries do not expire by default; read-only
	now        func() int64  // the deadlines' clock when !expiring; read-only
	_          [64]byte      // keeps epoch off the lines written below

	// epoch is bumped by Clear; only items carrying the current value are
	// served. Read by every Get, so it has a line of its own.
	epoch atomic.Uint64
	_     [56]byte

	hits, misses          stripedCounter
	evictions, expiration atomic.Uint64 // written by otter's maintenance

	exec executor
}

// presized bounds the capacity otter's table and sketch are sized for at
// creation (see New); bigger stores grow them as they fill.
const presized = 1 << 16

// New validates cfg and returns an empty store.
func New[V any](cfg Config) (*Store[V], error) {
	if cfg.Capacity <= 0 {
		return nil, fmt.Errorf("store: Capacity (%d) must be positive: %w", cfg.Capacity, ErrInvalidConfig)
	}
	if cfg.DefaultTTL < 0 {
		return nil, fmt.Errorf("store: DefaultTTL (%v) must not be negative: %w", cfg.DefaultTTL, ErrInvalidConfig)
	}
	s := &Store[V]{seed: maphash.MakeSeed(), defaultTTL: cfg.DefaultTTL, hits: newStripedCounter(), misses: newStripedCounter()}
	s.expiring = s.defaultTTL > 0
	if !s.expiring {
		s.defaultTTL = never
	}
	clock := cfg.clock
	if clock == nil {
		clock = monoClock{}
	}
	s.now = clock.NowNano
	o := &otter.Options[string, item[V]]{
		MaximumSize: cfg.Capacity,
		// Sizes otter's frequency sketch (and table) from the start, so the
		// policy counts reads before the cache is half full; otherwise
		// otter without expiry skips recording reads until then (with an
		// ExpiryCalculator it records them), which cost up to a point of
		// hit ratio on small caches (bench/STORE_RESULTS.md). Bounded, so a
		// large Capacity does not allocate its full table up front.
		InitialCapacity:  min(cfg.Capacity, presized),
		OnAtomicDeletion: s.onDeletion,
		Executor:         s.exec.run,
	}
	if s.expiring {
		// Created and updated entries take the TTL their write asked for;
		// reads leave the deadline alone (writing, not accessing, expiry).
		o.ExpiryCalculator = otter.ExpiryWritingFunc(func(e otter.Entry[string, item[V]]) time.Duration {
			return time.Duration(-e.Value.exp)
		})
		o.Clock = clock
	}
	c, err := otter.New(o)
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
	// Lookup's body, not a call to it: one call frame less on the hot path.
	if it, ok := s.c.GetIfPresent(key); ok && (it.exp <= 0 && it.epoch == s.epoch.Load() || it.exp > 0 && s.unexpired(key, it)) {
		s.stripe(&s.hits).Add(1)
		return it.v, true
	}
	s.stripe(&s.misses).Add(1)
	var zero V
	return zero, false
}

// Lookup is Get without counting. Peek is the same, for a second look at a
// key whose miss was counted already.
func (s *Store[V]) Lookup(key string) (V, bool) {
	// The item is served if written since the last Clear and, if it has a
	// deadline, not expired.
	if it, ok := s.c.GetIfPresent(key); ok && (it.exp <= 0 && it.epoch == s.epoch.Load() || it.exp > 0 && s.unexpired(key, it)) {
		return it.v, true
	}
	var zero V
	return zero, false
}

// Peek is Lookup.
func (s *Store[V]) Peek(key string) (V, bool) { return s.Lookup(key) }

// unexpired reports whether it, an item with a deadline (a store without
// otter's expiry), may be served: written since the last Clear and before
// its deadline. An expired item is
// removed (unless a write replaced it since) and counted as expired: no
// timer wheel removes it otherwise, only the size policy.
func (s *Store[V]) unexpired(key string, it item[V]) bool {
	if it.epoch != s.epoch.Load() {
		return false
	}
	if s.now() < it.exp {
		return true
	}
	s.c.Compute(key, func(old item[V], found bool) (item[V], otter.ComputeOp) {
		if found && old.exp == it.exp && old.epoch == it.epoch {
			s.expiration.Add(1)
			return old, otter.InvalidateOp
		}
		return old, otter.CancelOp
	})
	return false
}

// stripe is c.stripe as a method of the generic Store: the compiler
// inlines it into the instantiations of Store's methods, which it does not
// do for the non-generic method.
func (s *Store[V]) stripe(c *stripedCounter) *atomic.Uint64 {
	var x byte
	h := uint64(uintptr(unsafe.Pointer(&x))>>11) * stripeMul
	return &c.stripes[(h>>40)&c.mask].n
}

// CountHit counts a hit found with Lookup that the caller served.
func (s *Store[V]) CountHit() { s.stripe(&s.hits).Add(1) }

// CountMiss counts a miss found with Lookup.
func (s *Store[V]) CountMiss() { s.stripe(&s.misses).Add(1) }

// itemOf builds the item a write stores. A Set ttl > 0 is the entry's time
// to live; 0 means Config.DefaultTTL; a negative ttl means no expiry.
func (s *Store[V]) itemOf(v V, ttl time.Duration) item[V] {
	// The epoch is read before the write: if a Clear runs in between, the
	// item carries the old epoch and is never served.
	it := item[V]{v: v, epoch: s.epoch.Load()}
	switch {
	case ttl == 0:
		ttl = s.defaultTTL
	case ttl < 0:
		ttl = never
	}
	switch {
	case s.expiring:
		it.exp = -int64(ttl)
	case ttl != never:
		if it.exp = s.now() + int64(ttl); it.exp <= 0 { // the clock is >= 0: an overflow
			it.exp = math.MaxInt64
		}
	}
	return it
}

// Set stores v under key. ttl > 0 is the entry's time to live; 0 means
// Config.DefaultTTL; a negative ttl means the entry never expires. Updating
// an existing key allocates otter's box for the item (an item is more than
// one word).
func (s *Store[V]) Set(key string, v V, ttl time.Duration) {
	s.c.Set(key, s.itemOf(v, ttl))
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
	it := s.itemOf(v, ttl)
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
	return ok && it.epoch == s.epoch.Load() && (it.exp <= 0 || s.now() < it.exp) // no removal to do
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

// monoClock is the store's time source (otter's in an expiring store, the
// deadlines' otherwise): the project's one monotonic time base.
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
