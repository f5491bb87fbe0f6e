package bench

import (
	"container/list"
	"hash/maphash"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/maypok86/otter/v2"

	"github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/invalidation/drivers/memory"
)

// storeImpl is what the store benchmarks drive: string keys, int values,
// one TTL for every entry (0 = none).
type storeImpl interface {
	Get(key string) (int, bool)
	Set(key string, v int)
	Len() int
	Close()
}

// implNames lists the implementations in report order; otter is the
// reference for ratios.
var implNames = []string{"invacache", "otter", "ristretto", "lru"}

// storeShards is the shard count of the LRU baseline.
const storeShards = 64

func newImpl(name string, capacity int, ttl time.Duration) storeImpl {
	switch name {
	case "invacache":
		return newInvaCache(capacity, ttl, false)
	case "invacache+bus":
		return newInvaCache(capacity, ttl, true)
	case "otter":
		o := &otter.Options[string, int]{MaximumSize: capacity}
		if ttl > 0 {
			o.ExpiryCalculator = otter.ExpiryWriting[string, int](ttl)
		}
		return otterImpl{otter.Must(o)}
	case "otter+expiry": // an ExpiryCalculator even without a TTL, as InvaCache's store has
		if ttl <= 0 {
			ttl = math.MaxInt64 // never: the deadline saturates
		}
		return otterImpl{otter.Must(&otter.Options[string, int]{MaximumSize: capacity, ExpiryCalculator: otter.ExpiryWriting[string, int](ttl)})}
	case "invacache/string":
		return stringValues{newInvaCacheOf[string](capacity, ttl, false)}
	case "otter/string":
		o := &otter.Options[string, string]{MaximumSize: capacity}
		if ttl > 0 {
			o.ExpiryCalculator = otter.ExpiryWriting[string, string](ttl)
		}
		return otterStrings{otter.Must(o)}
	case "ristretto":
		c, err := ristretto.NewCache(&ristretto.Config[string, int]{
			NumCounters: int64(capacity) * 10, MaxCost: int64(capacity), BufferItems: 64,
			IgnoreInternalCost: true,
		})
		if err != nil {
			panic(err)
		}
		return ristrettoImpl{c, ttl}
	case "lru":
		return newLRU(capacity, ttl)
	}
	panic("unknown implementation " + name)
}

// invaImpl drives InvaCache through its public API (cache.Get), local or
// attached to an in-process invalidation bus (then every Get also checks
// the staleness bound).
type invaImplOf[V any] struct {
	c     invacache.Cache[V]
	close func()
}

// invaImpl is InvaCache with int values.
type invaImpl struct{ invaImplOf[int] }

func newInvaCache(capacity int, ttl time.Duration, withBus bool) invaImpl {
	return invaImpl{newInvaCacheOf[int](capacity, ttl, withBus)}
}

func newInvaCacheOf[V any](capacity int, ttl time.Duration, withBus bool) invaImplOf[V] {
	mem := &config.InMemoryConfig{Capacity: capacity}
	if ttl > 0 {
		mem.Ttl = ttl.String()
	}
	cfg := config.InvaCacheConfig{Backend: &config.BackendConfig{InMemory: mem}}
	closeBus := func() {}
	if withBus {
		bus := memory.NewBus()
		conn := bus.Connect()
		cfg.Invalidation = &config.InvalidationConfig{Driver: conn}
		closeBus = func() { conn.Close(); bus.Close() }
	}
	c, err := invacache.NewCache[V](cfg)
	if err != nil {
		panic(err)
	}
	return invaImplOf[V]{c, func() { c.Close(); closeBus() }}
}

func (i invaImpl) Get(k string) (int, bool) {
	v, err := i.c.Get(k)
	return v, err == nil
}
func (i invaImpl) Set(k string, v int) { i.c.Set(k, v) }
func (i invaImplOf[V]) Len() int       { return i.c.Len() }
func (i invaImplOf[V]) Close()         { i.close() }

// stringVals are the values of the string-valued rows: two words, so otter
// keeps an updated value in a box, as it does for InvaCache's entries.
var stringVals = func() (s [1024]string) {
	for i := range s {
		s[i] = "value:" + strconv.Itoa(i)
	}
	return s
}()

// stringValues is InvaCache with string values (Get reports the length).
type stringValues struct{ invaImplOf[string] }

func (s stringValues) Get(k string) (int, bool) {
	v, err := s.c.Get(k)
	return len(v), err == nil
}
func (s stringValues) Set(k string, v int) { s.c.Set(k, stringVals[v&1023]) }

// otterStrings is raw otter with string values.
type otterStrings struct{ c *otter.Cache[string, string] }

func (o otterStrings) Get(k string) (int, bool) {
	v, ok := o.c.GetIfPresent(k)
	return len(v), ok
}
func (o otterStrings) Set(k string, v int) { o.c.Set(k, stringVals[v&1023]) }
func (o otterStrings) Len() int {
	o.c.CleanUp()
	return o.c.EstimatedSize()
}
func (o otterStrings) Close() { o.c.StopAllGoroutines() }

type otterImpl struct{ c *otter.Cache[string, int] }

func (o otterImpl) Get(k string) (int, bool) { return o.c.GetIfPresent(k) }
func (o otterImpl) Set(k string, v int)      { o.c.Set(k, v) }
func (o otterImpl) Len() int {
	o.c.CleanUp() // as InvaCache's Len: run pending maintenance first
	return o.c.EstimatedSize()
}
func (o otterImpl) Close() { o.c.StopAllGoroutines() }

type ristrettoImpl struct {
	c   *ristretto.Cache[string, int]
	ttl time.Duration
}

func (r ristrettoImpl) Get(k string) (int, bool) { return r.c.Get(k) }
func (r ristrettoImpl) Set(k string, v int) {
	if r.ttl > 0 {
		r.c.SetWithTTL(k, v, 1, r.ttl)
	} else {
		r.c.Set(k, v, 1)
	}
}
func (r ristrettoImpl) Len() int {
	r.c.Wait()
	n := 0
	r.c.IterValues(func(int) bool { n++; return false })
	return n
}
func (r ristrettoImpl) Close() { r.c.Close() }

// lruCache is the baseline: sharded, one sync.Mutex per shard (a hit moves
// the entry, so Get needs the exclusive lock), container/list recency order.
type lruCache struct {
	seed   maphash.Seed
	shards []lruShard
	ttl    time.Duration
}

type lruShard struct {
	mu    sync.Mutex // guards items and order
	items map[string]*list.Element
	order *list.List // front = most recent
	cap   int
	_     [64]byte
}

type lruItem struct {
	key    string
	value  int
	expire time.Time // zero = never
}

func newLRU(capacity int, ttl time.Duration) *lruCache {
	c := &lruCache{seed: maphash.MakeSeed(), shards: make([]lruShard, storeShards), ttl: ttl}
	for i := range c.shards {
		c.shards[i] = lruShard{items: map[string]*list.Element{}, order: list.New(), cap: max(1, capacity/storeShards)}
	}
	return c
}

func (c *lruCache) shard(k string) *lruShard {
	return &c.shards[maphash.String(c.seed, k)%storeShards]
}

func (c *lruCache) Get(k string) (int, bool) {
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.items[k]
	if !ok {
		return 0, false
	}
	it := el.Value.(*lruItem)
	if !it.expire.IsZero() && time.Now().After(it.expire) {
		s.order.Remove(el)
		delete(s.items, k)
		return 0, false
	}
	s.order.MoveToFront(el)
	return it.value, true
}

func (c *lruCache) Set(k string, v int) {
	var exp time.Time
	if c.ttl > 0 {
		exp = time.Now().Add(c.ttl)
	}
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.items[k]; ok {
		it := el.Value.(*lruItem)
		it.value, it.expire = v, exp
		s.order.MoveToFront(el)
		return
	}
	if s.order.Len() >= s.cap {
		old := s.order.Back()
		s.order.Remove(old)
		delete(s.items, old.Value.(*lruItem).key)
	}
	s.items[k] = s.order.PushFront(&lruItem{key: k, value: v, expire: exp})
}

func (c *lruCache) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += s.order.Len()
		s.mu.Unlock()
	}
	return n
}

func (c *lruCache) Close() {}
