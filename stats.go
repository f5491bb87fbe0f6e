package invacache

import "time"

// Stats are a cache's counters since it was created.
type Stats struct {
	// Hits and Misses count Get lookups (GetOrLoad's included). Misses
	// include lookups refused while the node may not serve (MaxStaleness).
	Hits, Misses uint64
	// NotServingMisses is the part of Misses refused because the node may
	// not serve (its link is not proven alive, or a gap is being handled);
	// always 0 for a local cache.
	NotServingMisses uint64
	// Loads counts loader calls; LoadErrors those that returned an error or
	// panicked.
	Loads, LoadErrors uint64
	// Evictions counts entries removed for capacity; Expirations entries
	// removed because their TTL ran out.
	Evictions, Expirations uint64
	// Len is the number of entries held now.
	Len int
	// Distributed reports whether the cache is attached to an invalidation
	// bus; false for a local cache, whose Invalidation is all zero.
	Distributed bool
	// Invalidation holds the invalidation counters (broadcasts, messages,
	// gaps, outbox depth, link state); zero for a local cache.
	Invalidation InvalidationStats
}

// InvalidationStats are the counters of a cache's invalidation link.
type InvalidationStats struct {
	BroadcastsQueued  uint64 // keys and clears requested through Set/Delete/Clear with invalidation
	KeysSent          uint64 // keys in published messages (after coalescing)
	ClearsSent        uint64 // clears published
	MessagesSent      uint64 // payloads published
	PublishRetries    uint64 // publish attempts after a failure
	PublishFailures   uint64 // errors returned by the driver's Publish
	BroadcastsDropped uint64 // keys (a clear counts 1) lost at Close

	MessagesReceived uint64 // payloads delivered by the subscription
	MessagesApplied  uint64 // envelopes and raw payloads applied to the cache
	IgnoredOwn       uint64 // own envelopes ignored (self-suppression)
	RawKeys          uint64 // raw payloads (a key, or empty = clear)
	Malformed        uint64 // envelopes that failed to decode (not unknown versions)
	Gaps             uint64 // possible losses: link up, sequence jump, unknown version, malformed, liveness lapse
	ClearsOnGap      uint64 // whole-cache clears because of a gap

	OutboxDepth int           // keys (a clear counts 1) queued or being published
	LinkUp      bool          // the subscription is established
	Serving     bool          // cached values may be served at the time of the snapshot
	LastAlive   time.Time     // last proof of a live subscription (zero: never)
	SinceAlive  time.Duration // time since LastAlive (0 when never)
}

func (c *cache[V]) Stats() Stats {
	ss := c.store.Stats()
	unserved := c.unservedMisses.Load()
	st := Stats{
		Hits:             ss.Hits,
		Misses:           ss.Misses + unserved,
		NotServingMisses: unserved,
		Loads:            c.loads.Load(),
		LoadErrors:       c.loadErrors.Load(),
		Evictions:        ss.Evictions,
		Expirations:      ss.Expirations,
		Len:              c.store.Len(),
	}
	if c.eng != nil {
		st.Distributed = true
		st.Invalidation = InvalidationStats(c.eng.Stats())
	}
	return st
}
