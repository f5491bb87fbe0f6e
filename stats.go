package invacache

import "github.com/halilbulentorhon/invacache-go/invalidation/engine"

// Stats are a cache's counters since it was created.
type Stats struct {
	// Hits and Misses count Get lookups (GetOrLoad's included). Misses
	// include lookups refused while the node may not serve (MaxStaleness).
	Hits, Misses uint64
	// Loads counts loader calls; LoadErrors those that returned an error or
	// panicked.
	Loads, LoadErrors uint64
	// Evictions counts entries removed for capacity; Expirations entries
	// removed because their TTL ran out.
	Evictions, Expirations uint64
	// Len is the number of entries held now.
	Len int
	// Invalidation holds the engine's counters (broadcasts, messages, gaps,
	// outbox depth, link state); zero for a local cache.
	Invalidation engine.Stats
}

func (c *cache[V]) Stats() Stats {
	ss := c.store.Stats()
	st := Stats{
		Hits:        ss.Hits,
		Misses:      ss.Misses + c.unservedMisses.Load(),
		Loads:       c.loads.Load(),
		LoadErrors:  c.loadErrors.Load(),
		Evictions:   ss.Evictions,
		Expirations: ss.Expirations,
		Len:         c.store.Len(),
	}
	if c.eng != nil {
		st.Invalidation = c.eng.Stats()
	}
	return st
}
