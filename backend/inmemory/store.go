package inmemory

import (
	"fmt"
	"hash/maphash"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/monotime"
)

// Config configures a Store.
type Config struct {
	// ShardCount is the number of shards (> 0), rounded up to a power of two.
	ShardCount int
	// Capacity is the hard bound on entries held (>= the rounded ShardCount).
	// It is split evenly across the shards and each shard is bounded.
	Capacity int
	// DefaultTTL applies to Set calls with ttl == 0. Zero means such entries
	// never expire. Must not be negative.
	DefaultTTL time.Duration
	// SweepInterval (> 0) is the period of the background expiry sweep.
	SweepInterval time.Duration
}

// Stats are cumulative counters of a Store.
type Stats struct {
	Hits        uint64 // Get found a live entry
	Misses      uint64 // Get found nothing, or only an expired entry
	Evictions   uint64 // entries removed by the policy to stay within Capacity
	Expirations uint64 // expired entries removed (sweeper or eviction)
}

// ErrInvalidConfig is config.ErrInvalidConfig; every error from New wraps it.
var ErrInvalidConfig = config.ErrInvalidConfig

// maxShardCount bounds ShardCount so rounding to a power of two cannot overflow.
const maxShardCount = 1 << 16

// maxCapacity bounds the entries of one shard: slot indexes are uint32 and
// nilIdx is reserved.
const maxShardCapacity = 1<<32 - 2

func (c Config) validate() (shards int, err error) {
	if c.ShardCount <= 0 {
		return 0, fmt.Errorf("inmemory: ShardCount (%d) must be positive: %w", c.ShardCount, ErrInvalidConfig)
	}
	if c.ShardCount > maxShardCount {
		return 0, fmt.Errorf("inmemory: ShardCount (%d) exceeds %d: %w", c.ShardCount, maxShardCount, ErrInvalidConfig)
	}
	shards = 1 << bits.Len(uint(c.ShardCount-1))
	if c.Capacity < shards {
		if shards != c.ShardCount {
			return 0, fmt.Errorf("inmemory: Capacity (%d) is below ShardCount (%d, rounded up from %d): %w",
				c.Capacity, shards, c.ShardCount, ErrInvalidConfig)
		}
		return 0, fmt.Errorf("inmemory: Capacity (%d) is below ShardCount (%d): %w", c.Capacity, shards, ErrInvalidConfig)
	}
	if uint64(c.Capacity)/uint64(shards) >= maxShardCapacity {
		return 0, fmt.Errorf("inmemory: Capacity (%d) is too large for ShardCount (%d): %w", c.Capacity, shards, ErrInvalidConfig)
	}
	if c.DefaultTTL < 0 {
		return 0, fmt.Errorf("inmemory: DefaultTTL (%v) must not be negative: %w", c.DefaultTTL, ErrInvalidConfig)
	}
	if c.SweepInterval <= 0 {
		return 0, fmt.Errorf("inmemory: SweepInterval (%v) must be positive: %w", c.SweepInterval, ErrInvalidConfig)
	}
	return shards, nil
}

// Store is a sharded, bounded, concurrent in-memory cache with per-entry TTL
// and an S3-FIFO eviction policy. The zero value is not usable; call New.
type Store[V any] struct {
	seed       maphash.Seed // fixed at New; read-only
	mask       uint64       // len(shards)-1; read-only
	shards     []shard[V]   // each guarded by its own mu
	defaultTTL int64        // nanoseconds, 0 = never; read-only
	interval   time.Duration

	canExpire atomic.Bool // set once an entry with a deadline is stored

	lifeMu  sync.Mutex    // guards started, closed, stop, done
	started bool          // sweeper goroutine launched
	closed  bool          // Close called
	stop    chan struct{} // closed by Close to stop the sweeper
	done    chan struct{} // closed by the sweeper when it returns
}

// New validates cfg and returns an empty store. The expiry sweeper starts
// with the first entry that can expire.
func New[V any](cfg Config) (*Store[V], error) {
	n, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	s := &Store[V]{
		seed:       maphash.MakeSeed(),
		mask:       uint64(n - 1),
		shards:     make([]shard[V], n),
		defaultTTL: int64(cfg.DefaultTTL),
		interval:   cfg.SweepInterval,
	}
	per, extra := cfg.Capacity/n, cfg.Capacity%n
	for i := range s.shards {
		c := per
		if i < extra {
			c++
		}
		s.shards[i].init(c)
	}
	return s, nil
}

// KeyHash returns the store's seeded hash of key. It does not allocate.
func (s *Store[V]) KeyHash(key string) uint64 {
	return maphash.String(s.seed, key)
}

// now is the monotonic clock used for deadlines: nanoseconds since New.
func (s *Store[V]) now() int64 { return monotime.Now() }

func (s *Store[V]) shardFor(h uint64) *shard[V] {
	// The low bits pick the shard; the high half is the key's tag in the
	// shard's table, ghost and sketch, so the two stay independent.
	return &s.shards[h&s.mask]
}

// Get returns the value stored under key. It never returns an expired entry,
// takes only the shard's read lock and does not allocate.
func (s *Store[V]) Get(key string) (V, bool) { return s.get(key, -1) }

// GetAt is Get with a clock reading (monotime.Now) the caller already took,
// so a caller that needs the time too reads the clock once per lookup.
func (s *Store[V]) GetAt(key string, now int64) (V, bool) { return s.get(key, now) }

// Peek is Get without counting a hit or a miss and without touching the
// entry's access frequency: a second look at a key whose lookup was already
// counted.
func (s *Store[V]) Peek(key string) (V, bool) {
	h := s.KeyHash(key)
	sh := s.shardFor(h)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if i, ok := sh.lookup(key, h); ok {
		if e := &sh.entries[i]; e.expire == 0 || e.expire > s.now() {
			return e.value, true
		}
	}
	var zero V
	return zero, false
}

// get looks key up; now < 0 means "read the clock if the entry can expire".
func (s *Store[V]) get(key string, now int64) (V, bool) {
	h := s.KeyHash(key)
	sh := s.shardFor(h)
	sh.mu.RLock()
	if i, ok := sh.lookup(key, h); ok {
		e := &sh.entries[i]
		if e.expire != 0 && now < 0 {
			now = s.now()
		}
		if e.expire == 0 || e.expire > now {
			v := e.value
			// Saturating access counter: skip the store when already at
			// the cap so hot keys do not bounce their cache line.
			bump(&e.meta)
			sh.mu.RUnlockCount() // counts the hit
			return v, true
		}
	}
	sh.mu.RUnlock()
	sh.misses.Add(1)
	var zero V
	return zero, false
}

// deadline turns a Set ttl into an absolute deadline (0 = never).
func (s *Store[V]) deadline(ttl time.Duration, now int64) int64 {
	if ttl == 0 {
		ttl = time.Duration(s.defaultTTL)
	}
	if ttl <= 0 {
		return 0
	}
	d := now + int64(ttl)
	if d <= 0 { // overflow: treat as never
		return 0
	}
	return d
}

// Set stores v under key. ttl > 0 is the entry's time to live; 0 means
// Config.DefaultTTL; a negative ttl means the entry never expires. Updating
// an existing key does not allocate.
func (s *Store[V]) Set(key string, v V, ttl time.Duration) {
	s.SetIf(key, v, ttl, nil)
}

// SetIf stores v under key only if ok returns true, and reports whether it
// stored. ok runs while the key's shard is write-locked, so no Set, Delete or
// Clear of that shard can interleave with the check and the store; it must
// be fast, must not panic and must not call back into the Store (the shard
// lock is not reentrant). A nil ok always stores.
func (s *Store[V]) SetIf(key string, v V, ttl time.Duration, ok func() bool) bool {
	h := s.KeyHash(key)
	now := s.now() // one clock read serves the deadline and eviction
	exp := s.deadline(ttl, now)
	sh := s.shardFor(h)
	sh.mu.Lock()
	if ok != nil && !ok() {
		sh.mu.Unlock()
		return false
	}
	sh.set(key, h, v, exp, now)
	sh.mu.Unlock()
	if exp != 0 && !s.canExpire.Load() {
		s.startSweeper()
	}
	return true
}

// Delete removes key and reports whether a live entry was removed.
func (s *Store[V]) Delete(key string) bool {
	h := s.KeyHash(key)
	sh := s.shardFor(h)
	sh.mu.Lock()
	i, ok := sh.lookup(key, h)
	live := false
	if ok {
		e := &sh.entries[i]
		live = e.expire == 0 || e.expire > s.now()
		sh.remove(i)
	}
	sh.mu.Unlock()
	return live
}

// Clear removes every entry. Counters are kept.
func (s *Store[V]) Clear() {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		sh.reset()
		sh.mu.Unlock()
	}
}

// Len returns the number of entries held, which never exceeds Capacity. It
// may include expired entries the sweeper has not removed yet.
func (s *Store[V]) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		n += int(sh.small.n + sh.main.n)
		sh.mu.RUnlock()
	}
	return n
}

// Stats returns the cumulative counters, summed over the shards. It takes
// each shard's write lock briefly to collect the hits its lock counted.
func (s *Store[V]) Stats() Stats {
	var st Stats
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		sh.foldHits()
		sh.mu.Unlock()
		st.Hits += sh.hits.Load()
		st.Misses += sh.misses.Load()
		st.Evictions += sh.evictions.Load()
		st.Expirations += sh.expirations.Load()
	}
	return st
}

// Close stops the expiry sweeper and waits for it. It is idempotent. The
// store stays usable; expired entries are then only dropped lazily (on
// eviction) and never returned.
func (s *Store[V]) Close() {
	s.lifeMu.Lock()
	if s.closed {
		s.lifeMu.Unlock()
		return
	}
	s.closed = true
	started := s.started
	if started {
		close(s.stop)
	}
	s.lifeMu.Unlock()
	if started {
		<-s.done
	}
}

// startSweeper launches the sweeper once, unless the store is closed.
func (s *Store[V]) startSweeper() {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	s.canExpire.Store(true)
	if s.started || s.closed {
		return
	}
	s.started = true
	s.stop = make(chan struct{})
	s.done = make(chan struct{})
	go s.sweep()
}

// sweepChunk bounds how many slots one lock hold examines, so the sweep
// never blocks a shard for a full scan.
const sweepChunk = 128

func (s *Store[V]) sweep() {
	defer close(s.done)
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		for i := range s.shards {
			if !s.sweepShard(&s.shards[i]) {
				return
			}
		}
	}
}

// sweepShard removes expired entries of one shard in bounded chunks,
// releasing the lock between chunks. A shard whose earliest deadline has not
// come is skipped without a scan. It returns false when told to stop.
func (s *Store[V]) sweepShard(sh *shard[V]) bool {
	sh.mu.Lock()
	sh.foldHits()
	if s.now() < sh.nextExpiry {
		sh.mu.Unlock()
		return true
	}
	// Recompute the earliest deadline during the pass; inserts meanwhile
	// lower it too, so it never exceeds the true earliest deadline.
	sh.nextExpiry = noExpiry
	sh.mu.Unlock()
	for start := 0; ; start += sweepChunk {
		select {
		case <-s.stop:
			sh.mu.Lock()
			sh.nextExpiry = 0 // pass incomplete: sweep fully next time
			sh.mu.Unlock()
			return false
		default:
		}
		sh.mu.Lock()
		if start >= len(sh.entries) {
			sh.mu.Unlock()
			return true
		}
		end := min(start+sweepChunk, len(sh.entries))
		now := s.now()
		for i := start; i < end; i++ {
			if !sh.dropIfExpired(uint32(i), now) {
				if e := &sh.entries[i]; e.expire != 0 && e.queue() != qNone {
					sh.nextExpiry = min(sh.nextExpiry, e.expire)
				}
			}
		}
		sh.mu.Unlock()
	}
}
