package invacache

import (
	"time"

	"github.com/halilbulentorhon/invacache-go/internal/engine"
)

// Reasons for a whole-cache clear: the keys of
// InvalidationStats.ClearsByReason, and the "reason" label of the metrics
// modules' clears series.
const (
	// ClearReasonFirstSubscribe: the node's first link-up (what it cached
	// before it was subscribed may be stale).
	ClearReasonFirstSubscribe = "first_subscribe"
	// ClearReasonReplayDisabled: a gap, and the driver keeps no replay log
	// (the Redis driver's DisableReplay, or a driver without a log).
	ClearReasonReplayDisabled = "replay_disabled"
	// ClearReasonNoCursor: a gap before the node knew its position in the
	// log (reading the log's head failed at its last clear).
	ClearReasonNoCursor = "no_cursor"
	// ClearReasonNoContinuity: the log could not prove that it holds every
	// entry the node missed: trimmed past its cursor (away longer than the
	// replay window), recreated (a Redis restart without persistence), or
	// shorter (a failover to a replica that lost the log's tail).
	ClearReasonNoContinuity = "no_continuity"
	// ClearReasonReplayError: reading the log failed (network, timeout).
	ClearReasonReplayError = "replay_error"
	// ClearReasonMalformed: an envelope that failed to decode, received
	// live or read from the log.
	ClearReasonMalformed = "malformed"
	// ClearReasonUnknownVersion: an envelope of a wire version this node
	// cannot read (a newer peer), live or from the log.
	ClearReasonUnknownVersion = "unknown_version"
	// ClearReasonIDBackwards: a log entry id not after the previous one.
	ClearReasonIDBackwards = "id_backwards"
	// ClearReasonUnloggedPeer: a gap after a peer published outside the
	// log (replay disabled on that peer, or a raw key an operator published
	// with redis-cli): the log cannot cover such messages.
	ClearReasonUnloggedPeer = "unlogged_peer"
	// ClearReasonGapFlood: a gap while the node's budget of log reads for
	// gap handling (10 a second) was spent, as under a flood of malformed
	// messages: it clears without reading the log.
	ClearReasonGapFlood = "gap_flood"
	// ClearReasonPeer: a peer's Clear with invalidation. Not a gap.
	ClearReasonPeer = "peer_clear"
)

// ClearReasons returns every key InvalidationStats.ClearsByReason may hold,
// for metrics that pre-declare their label values.
func ClearReasons() []string { return engine.ClearReasons() }

// PublishLatencyBounds returns the upper bounds of
// InvalidationStats.PublishLatencyBuckets (100µs to 10s).
func PublishLatencyBounds() []time.Duration { return engine.LatencyBounds() }

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
	OutboxOverflows   uint64 // times the keys waiting to be broadcast passed OutboxMaxKeys or OutboxMaxBytes and collapsed into one clear

	MessagesReceived uint64 // payloads delivered by the subscription
	MessagesApplied  uint64 // envelopes and raw payloads applied to the cache
	IgnoredOwn       uint64 // own envelopes ignored (self-suppression)
	RawKeys          uint64 // raw payloads (a key, or empty = clear)
	Malformed        uint64 // envelopes that failed to decode (not unknown versions)
	Gaps             uint64 // possible losses: link up, sequence jump, unknown version, malformed, log id backwards or epoch change, liveness lapse
	ClearsOnGap      uint64 // whole-cache clears because of a gap (the gaps not caught up)
	CatchUps         uint64 // gaps recovered by replaying the driver's log, without a clear
	KeysReplayed     uint64 // keys invalidated from replayed log entries
	ClearsCollapsed  uint64 // gap clears that changed nothing (nothing cached since the last clear): not in ClearsOnGap or ClearsByReason
	OutageReads      uint64 // reads served past MaxStaleness since the last proof of life, under OutageStaleness while Redis was unreachable

	// ClearsByReason counts whole-cache clears by reason, one of the
	// ClearReason* constants (ClearReasonPeer is a peer's Clear, the others
	// are gaps). Only reasons that occurred are present; the map is the
	// caller's. The keys are valid metric label values.
	ClearsByReason map[string]uint64

	// PublishLatencyCount, PublishLatencySum and PublishLatencyBuckets time
	// each published batch from the request of its oldest broadcast (the
	// Set/Delete/Clear with invalidation) to the driver accepting the
	// message (for Redis: PUBLISH answered, the message handed to the
	// subscribers): outbox wait, retries while the bus is down and the
	// publish round trip. PublishLatencyBuckets[i] counts the batches that
	// took at most PublishLatencyBounds()[i] (cumulative);
	// PublishLatencyCount counts them all.
	PublishLatencyCount   uint64
	PublishLatencySum     time.Duration
	PublishLatencyBuckets [16]uint64

	OutboxDepth int           // keys (a clear counts 1) queued or being published
	LinkUp      bool          // the subscription is established
	Outage      bool          // the bus is unreachable (link down and connecting fails); OutageStaleness applies if set
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
