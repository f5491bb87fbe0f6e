package invacache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/halilbulentorhon/invacache-go/backend/option"
	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/engine"
	"github.com/halilbulentorhon/invacache-go/internal/store"
	"github.com/halilbulentorhon/invacache-go/invalidation"

	// The in-process bus is part of the core, so Type "memory" always works.
	_ "github.com/halilbulentorhon/invacache-go/invalidation/drivers/memory"
)

// LoaderFunc loads the value of a missing key for GetOrLoad. The returned
// ttl is the entry's time to live: > 0 that TTL, 0 the cache's default TTL,
// < 0 return the value without caching it.
type LoaderFunc[V any] func(key string) (V, time.Duration, error)

// ContextLoaderFunc is LoaderFunc with the caller's context.
type ContextLoaderFunc[V any] func(ctx context.Context, key string) (V, time.Duration, error)

// Cache is a typed cache of one replica. All methods are safe for concurrent
// use. After Close every method returns ErrClosed.
type Cache[V any] interface {
	// Get returns the cached value, or ErrNotFound.
	Get(key string) (V, error)
	// GetOrLoad returns the cached value or loads it; concurrent callers
	// for one key share one loader call, also while the node may not serve
	// its cache (its link down past MaxStaleness, or OutageStaleness when
	// set): then each load's result goes to its callers but is not cached,
	// so a node makes at most one load per key at a time, that is up to
	// 1/(loader latency) loads per key per second (200 for a 5 ms query)
	// while it lasts. Under OutageStaleness cached values are still served
	// and only misses load, without caching. A loader error (or panic, or
	// runtime.Goexit, as an error wrapping ErrLoaderPanic) reaches every
	// waiter and is not cached. A call that starts after Delete, Clear or
	// an invalidation of the key returned never joins a load that began
	// before it: it reads what was written before the invalidation.
	GetOrLoad(key string, loader LoaderFunc[V]) (V, error)
	// GetOrLoadContext is GetOrLoad with a context. The shared load runs
	// under a context that carries the values of the caller that started it
	// but no caller's cancellation or deadline: each waiter returns
	// ctx.Err() when its own context ends while the others keep waiting.
	// When the last waiter has gone the loader's context is cancelled and
	// whatever it returns is not cached. A caller whose context has already
	// ended returns ctx.Err() without loading.
	GetOrLoadContext(ctx context.Context, key string, loader ContextLoaderFunc[V]) (V, error)
	// Set stores value. option.WithInvalidation also drops the key on every
	// other node; a key longer than a message carries (1 MiB less 64 bytes)
	// is then refused with an error wrapping ErrInvalidArgument, and
	// nothing is stored.
	Set(key string, value V, options ...option.OptFnc) error
	// Delete removes key. option.WithDeleteInvalidation also removes it on
	// every other node; a key too long to broadcast is refused as by Set.
	Delete(key string, options ...option.DelOptFnc) error
	// Clear empties the cache. option.WithClearInvalidation also clears
	// every other node.
	Clear(options ...option.ClrOptFnc) error
	// Flush waits until every broadcast requested before the call has left
	// the process (reached the bus), or ctx ends. Without invalidation it
	// returns at once.
	Flush(ctx context.Context) error
	// WaitServing returns nil once the cache serves cached values: at once
	// for a local cache; for a distributed one once its subscription has
	// been established and, with MaxStaleness on, proven alive within the
	// bound with any gap handled (the clear or catch-up done), or while it
	// serves under OutageStaleness after its link was lost. It returns
	// ErrClosed after Close (also when Close comes during the wait) and
	// ctx.Err() when ctx ends first. A cache that serves returns nil even
	// with ctx already done, so a readiness probe can call it with one.
	WaitServing(ctx context.Context) error
	// Len is the number of entries held (expired ones not yet swept included).
	Len() int
	// Stats returns counters since the cache was created.
	Stats() Stats
	// Close flushes queued broadcasts (bounded by FlushTimeout), stops every
	// goroutine the cache started and releases the driver it opened. It is
	// idempotent. A shared load that GetOrLoadContext started on a goroutine
	// of its own ends when its loader returns; Close does not wait for it.
	Close() error
}

// genStripes is the number of load-generation counters (contract rule 5:
// loads never resurrect old data). Keys share a counter by hash, so an
// invalidation of one key may make a concurrent load of another key skip
// caching: harmless, and rare at this size.
const genStripes = 4096

// flightShards spreads in-flight loads over independent locks.
const flightShards = 64

type cache[V any] struct {
	store  *store.Store[V]
	eng    *engine.Engine      // nil for a local cache
	driver invalidation.Driver // closed by Close when ownDriver
	own    bool
	logger *slog.Logger

	closed atomic.Bool
	// closeMu serialises Close so a second caller waits for the first.
	closeMu sync.Mutex

	// gens and epoch implement race-safe loads: an invalidation bumps the
	// key's stripe (or the epoch for a clear) before removing the entry; a
	// load stores its value only if neither moved while it ran.
	gens  [genStripes]atomic.Uint64
	epoch atomic.Uint64
	// loading counts registered flights, so that Set bumps a generation and
	// an invalidation detaches flights only when a load could be overtaken.
	// A flight counts from its registration, before its loader reads the
	// generation: an invalidation that reads 0 precedes every load's start.
	loading atomic.Int64
	// stored is set after every store write and reset by invalidateAll
	// before it clears: false means nothing was cached since the last
	// clear, so the engine can skip a clear's work (peerTarget.Clean).
	stored atomic.Bool

	flights [flightShards]flightShard[V]

	loads, loadErrors, unservedMisses atomic.Uint64
}

type flightShard[V any] struct {
	mu sync.Mutex
	m  map[string]*flight[V] // guarded by mu: the load a new caller of the key joins
}

// flight is one shared load. It leaves its shard's map when it finishes,
// when its last waiter leaves, or when its key is invalidated (detached:
// later callers start a load of their own; its waiters still get its value).
type flight[V any] struct {
	ctx     context.Context    // the loader's: the starter's values, no caller's cancellation
	cancel  context.CancelFunc // ends ctx when the last waiter leaves; nil when the starter cannot leave
	waiters int                // guarded by the shard's mu: callers waiting for done
	done    chan struct{}      // closed once val and err are set
	val     V
	err     error
}

// NewCache builds a cache from cfg. cfg is copied and never modified; a zero
// config is a local cache with defaults. Configuration errors wrap
// ErrInvalidConfig and name the field.
//
// With invalidation, NewCache subscribes and waits for the link at most the
// driver's connect timeout (the Redis driver's DialTimeout, else 5s). If the
// bus is unreachable it still returns a working cache whose link is down: it
// serves nothing from cache until the link is up (MaxStaleness), while the
// driver keeps connecting in the background.
func NewCache[V any](cfg config.InvaCacheConfig) (Cache[V], error) {
	s, err := resolve(cfg)
	if err != nil {
		return nil, err
	}
	st, err := store.New[V](store.Config{Capacity: s.capacity, DefaultTTL: s.defaultTTL})
	if err != nil {
		return nil, fmt.Errorf("invacache: %w", err)
	}
	c := &cache[V]{store: st, logger: s.logger}
	for i := range c.flights {
		c.flights[i].m = map[string]*flight[V]{}
	}
	if s.inval == nil {
		return c, nil
	}
	if err := c.attach(s.inval); err != nil {
		st.Close()
		return nil, err
	}
	return c, nil
}

// attach opens (or adopts) the driver and starts the engine.
func (c *cache[V]) attach(inv *invalSettings) error {
	c.driver = inv.driver
	if c.driver == nil {
		d, err := invalidation.Open(inv.spec)
		if err != nil {
			if errors.Is(err, invalidation.ErrUnknownDriver) {
				return fmt.Errorf("invacache: Invalidation.Type: %w: %w", err, ErrInvalidConfig)
			}
			return fmt.Errorf("invacache: invalidation driver %q: %w", inv.spec.Type, err)
		}
		c.driver, c.own = d, true
	}
	eng, err := engine.New(engine.Config{
		Driver:          c.driver,
		Logger:          c.logger,
		MaxStaleness:    inv.maxStaleness,
		OutageStaleness: inv.outageStaleness,
		GapStrategy:     inv.gapStrategy,
		RetryBackoffMin: inv.backoffMin,
		RetryBackoffMax: inv.backoffMax,
		MaxMessageBytes: inv.maxMessageBytes,
		FlushTimeout:    inv.flushTimeout,
		OutboxMaxKeys:   inv.outboxMaxKeys,
		OutboxMaxBytes:  inv.outboxMaxBytes,
	}, peerTarget[V]{c})
	if err != nil {
		if c.own {
			c.driver.Close()
		}
		return fmt.Errorf("invacache: %w", err)
	}
	c.eng = eng

	wait := 5 * time.Second
	if ct, ok := c.driver.(invalidation.ConnectTimeouter); ok && ct.ConnectTimeout() > 0 {
		wait = ct.ConnectTimeout()
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := eng.WaitLinkUp(ctx); err != nil {
		if errors.Is(err, ErrInvalidConfig) {
			// Refused for a reason only the configuration fixes (a channel
			// the Redis ACL user may not use): fail now, not serve nothing.
			_ = eng.Close()
			if c.own {
				_ = c.driver.Close()
			}
			return fmt.Errorf("invacache: invalidation driver %q: %w", inv.spec.Type, err)
		}
		c.logger.Warn("invacache: invalidation link not up yet; serving nothing from cache until it is",
			"wait", wait, "err", err)
	}
	return nil
}

// serving reports whether cached values may be returned (contract rule 4:
// bounded staleness).
func (c *cache[V]) serving() bool {
	return c.eng == nil || c.eng.Serving()
}

// servingStrict reports whether a loaded value may be cached: serving
// under MaxStaleness, not merely under OutageStaleness.
func (c *cache[V]) servingStrict() bool {
	return c.eng == nil || c.eng.ServingStrict()
}

func (c *cache[V]) Get(key string) (V, error) {
	var zero V
	if c.closed.Load() {
		return zero, ErrClosed
	}
	if c.eng == nil {
		if v, ok := c.store.Get(key); ok {
			return v, nil
		}
		return zero, ErrNotFound
	}
	// With invalidation, the serving flag is checked before the lookup (so
	// the value read is not one a catch-up or clear removed before serving
	// resumed), and the staleness deadline then in force with the clock after
	// the lookup: one clock reading per Get with the bound on. The timer that turns the flag
	// off runs late on a starved process; the clock reading does not, so no
	// read is served past the deadline, nor past a deadline a recovery set
	// after removing the value this lookup read.
	deadline, serving := c.eng.MayServe()
	if !serving {
		c.unservedMisses.Add(1)
		return zero, ErrNotFound
	}
	v, found := c.store.Lookup(key)
	switch {
	case found && c.eng.ServingWithin(deadline):
		c.store.CountHit()
		return v, nil
	case found || !c.eng.Serving():
		c.unservedMisses.Add(1)
	default:
		c.store.CountMiss()
	}
	return zero, ErrNotFound
}

func (c *cache[V]) GetOrLoad(key string, loader LoaderFunc[V]) (V, error) {
	if loader == nil {
		var zero V
		return zero, fmt.Errorf("invacache: GetOrLoad(%q): nil loader: %w", key, ErrInvalidArgument)
	}
	return c.getOrLoad(context.Background(), key, func(_ context.Context, k string) (V, time.Duration, error) {
		return loader(k)
	})
}

func (c *cache[V]) GetOrLoadContext(ctx context.Context, key string, loader ContextLoaderFunc[V]) (V, error) {
	if loader == nil {
		var zero V
		return zero, fmt.Errorf("invacache: GetOrLoadContext(%q): nil loader: %w", key, ErrInvalidArgument)
	}
	return c.getOrLoad(ctx, key, loader)
}

func (c *cache[V]) getOrLoad(ctx context.Context, key string, loader ContextLoaderFunc[V]) (V, error) {
	var zero V
	v, err := c.Get(key)
	if err == nil || errors.Is(err, ErrClosed) {
		return v, err
	}
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	h := c.store.KeyHash(key)
	fs := &c.flights[h%flightShards]
	fs.mu.Lock()
	f, joined := fs.m[key]
	if !joined {
		f = &flight[V]{ctx: ctx, done: make(chan struct{})}
		if ctx.Done() != nil {
			f.ctx, f.cancel = context.WithCancel(context.WithoutCancel(ctx))
		}
		fs.m[key] = f
		c.loading.Add(1)
	}
	f.waiters++
	fs.mu.Unlock()
	if !joined {
		if f.cancel == nil {
			// Nothing can end this caller's wait, so the load cannot be
			// abandoned: run it on this goroutine.
			c.run(f, fs, key, h, loader)
			return f.val, f.err
		}
		go c.run(f, fs, key, h, loader)
	}
	select {
	case <-f.done:
		return f.val, f.err
	case <-ctx.Done():
		c.leave(f, fs, key)
		return zero, ctx.Err()
	}
}

// run performs flight f and publishes its result. The cleanup is deferred:
// a loader that ends its goroutine (runtime.Goexit) leaves no flight behind
// and its waiters get an error.
func (c *cache[V]) run(f *flight[V], fs *flightShard[V], key string, h uint64, loader ContextLoaderFunc[V]) {
	returned := false
	defer func() {
		if !returned {
			// load recovers the loader's panics, so this goroutine is
			// exiting without one (runtime.Goexit).
			c.loadErrors.Add(1)
			var zero V
			f.val, f.err = zero, fmt.Errorf("invacache: loader for key %q ended its goroutine (runtime.Goexit) without returning: %w", key, ErrLoaderPanic)
		}
		fs.mu.Lock()
		if fs.m[key] == f {
			delete(fs.m, key)
		}
		fs.mu.Unlock()
		c.loading.Add(-1)
		if f.cancel != nil {
			f.cancel()
		}
		close(f.done)
	}()
	f.val, f.err = c.load(f.ctx, key, h, loader)
	returned = true
}

// leave drops a waiter whose context ended. The last one to leave abandons
// the load: it is no longer joinable, and its context is cancelled (so its
// result is not cached).
func (c *cache[V]) leave(f *flight[V], fs *flightShard[V], key string) {
	fs.mu.Lock()
	f.waiters--
	last := f.waiters == 0
	if last && fs.m[key] == f {
		delete(fs.m, key)
	}
	fs.mu.Unlock()
	if last && f.cancel != nil {
		f.cancel()
	}
}

// load runs the loader and caches its value unless the key was invalidated,
// the cache cleared, the node stopped serving or every waiter left (ctx
// ended) while it ran (contract rule 5).
func (c *cache[V]) load(ctx context.Context, key string, h uint64, loader ContextLoaderFunc[V]) (V, error) {
	stripe := &c.gens[h%genStripes]
	gen, epoch := stripe.Load(), c.epoch.Load()
	// Another caller may have finished a load of this key between our miss
	// and our registration as the key's flight. Peek: the caller's lookup
	// already counted its miss.
	if c.serving() {
		if v, ok := c.store.Peek(key); ok {
			return v, nil
		}
	}
	c.loads.Add(1)
	v, ttl, err := callLoader(ctx, key, loader)
	if err != nil {
		c.loadErrors.Add(1)
		return v, err
	}
	if ttl < 0 || c.closed.Load() {
		return v, nil
	}
	// A value loaded while the node may have missed invalidations for
	// longer than MaxStaleness (an outage served under OutageStaleness) is
	// not cached: it would outlive the outage as if it were current.
	if c.store.SetIf(key, v, ttl, func() bool {
		return stripe.Load() == gen && c.epoch.Load() == epoch && c.servingStrict() && ctx.Err() == nil
	}) {
		c.markStored()
	}
	return v, nil
}

func callLoader[V any](ctx context.Context, key string, loader ContextLoaderFunc[V]) (v V, ttl time.Duration, err error) {
	defer func() {
		if r := recover(); r != nil {
			var zero V
			v, ttl, err = zero, 0, fmt.Errorf("invacache: loader for key %q: %v: %w", key, r, ErrLoaderPanic)
		}
	}()
	return loader(ctx, key)
}

func (c *cache[V]) Set(key string, value V, options ...option.OptFnc) error {
	var o option.SetConfig
	if len(options) > 0 {
		// Applying options moves their config to the heap (the closures
		// take its address), so a plain Set skips it and stays allocation-free.
		o = option.ApplyOptions(options)
	}
	if c.closed.Load() {
		return ErrClosed
	}
	if o.TTL < 0 {
		return fmt.Errorf("invacache: Set(%q): negative TTL %s: %w", key, o.TTL, ErrInvalidArgument)
	}
	if err := c.checkBroadcastKey("Set", key, o.PublishInvalidation); err != nil {
		return err
	}
	ttl := o.TTL
	if o.NoExpiration {
		ttl = -1
	}
	if c.loading.Load() > 0 {
		// A load that started before this write must not overwrite it.
		c.gens[c.store.KeyHash(key)%genStripes].Add(1)
	}
	c.store.Set(key, value, ttl)
	c.markStored()
	if o.PublishInvalidation && c.eng != nil {
		return c.broadcastErr(c.eng.BroadcastDelete(key))
	}
	return nil
}

func (c *cache[V]) Delete(key string, options ...option.DelOptFnc) error {
	var o option.DeleteConfig
	if len(options) > 0 { // as in Set: a plain Delete does not allocate
		o = option.ApplyDeleteOptions(options)
	}
	if c.closed.Load() {
		return ErrClosed
	}
	if err := c.checkBroadcastKey("Delete", key, o.PublishInvalidation); err != nil {
		return err
	}
	c.invalidateKey(key)
	if o.PublishInvalidation && c.eng != nil {
		return c.broadcastErr(c.eng.BroadcastDelete(key))
	}
	return nil
}

func (c *cache[V]) Clear(options ...option.ClrOptFnc) error {
	o := option.ApplyClearOptions(options)
	if c.closed.Load() {
		return ErrClosed
	}
	c.invalidateAll()
	if o.PublishInvalidation && c.eng != nil {
		return c.broadcastErr(c.eng.BroadcastClear())
	}
	return nil
}

// checkBroadcastKey refuses, before the call changes anything, a key that
// op would broadcast but no message can carry: peers would reject the
// message and clear their whole caches.
func (c *cache[V]) checkBroadcastKey(op, key string, broadcast bool) error {
	if !broadcast || c.eng == nil {
		return nil
	}
	if err := engine.CheckKey(key); err != nil {
		return fmt.Errorf("invacache: %s with invalidation: %w", op, err)
	}
	return nil
}

func (c *cache[V]) broadcastErr(err error) error {
	if errors.Is(err, engine.ErrClosed) {
		return ErrClosed
	}
	return err
}

// invalidateKey bumps the key's generation before removing it, so a load
// that read the old generation cannot store afterwards, then detaches the
// key's load in flight so that no caller joins it after this returns.
func (c *cache[V]) invalidateKey(key string) {
	h := c.store.KeyHash(key)
	c.gens[h%genStripes].Add(1)
	c.store.Delete(key)
	if c.loading.Load() > 0 {
		fs := &c.flights[h%flightShards]
		fs.mu.Lock()
		delete(fs.m, key)
		fs.mu.Unlock()
	}
}

// markStored records a store write (after it, so that a write racing with
// invalidateAll leaves stored set or its entry cleared). The load keeps the
// shared cache line read-only once set.
func (c *cache[V]) markStored() {
	if !c.stored.Load() {
		c.stored.Store(true)
	}
}

// invalidateAll is invalidateKey for every key.
func (c *cache[V]) invalidateAll() {
	c.stored.Store(false) // before the clear: a write after it sets it again
	c.epoch.Add(1)
	c.store.Clear()
	if c.loading.Load() > 0 {
		for i := range c.flights {
			fs := &c.flights[i]
			fs.mu.Lock()
			clear(fs.m)
			fs.mu.Unlock()
		}
	}
}

func (c *cache[V]) Flush(ctx context.Context) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if c.eng == nil {
		return nil
	}
	return c.broadcastErr(c.eng.Flush(ctx))
}

func (c *cache[V]) WaitServing(ctx context.Context) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if c.eng == nil {
		return nil
	}
	return c.broadcastErr(c.eng.WaitServing(ctx))
}

func (c *cache[V]) Len() int { return c.store.Len() }

func (c *cache[V]) Close() error {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	if c.closed.Swap(true) {
		return nil
	}
	var errs []error
	if c.eng != nil {
		errs = append(errs, c.eng.Close())
		if c.own {
			errs = append(errs, c.driver.Close())
		}
	}
	c.store.Close()
	c.invalidateAll()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invacache: close: %w", err)
	}
	return nil
}

// peerTarget applies what the engine received from other nodes. Its methods
// run on the driver's goroutine.
type peerTarget[V any] struct{ c *cache[V] }

func (t peerTarget[V]) InvalidateKeys(keys []string) {
	for _, k := range keys {
		t.c.invalidateKey(k)
	}
}

func (t peerTarget[V]) InvalidateAll() { t.c.invalidateAll() }

// Clean reports that nothing was cached since the last clear: the engine
// then skips the work of a gap's clear (the log read, the count).
func (t peerTarget[V]) Clean() bool { return !t.c.stored.Load() }
