// Package invacache is a typed in-process cache for services that run many
// replicas: each replica keeps a fast local cache (TTL, a hard size bound, a
// frequency-aware eviction policy, GetOrLoad with single flight), and a write
// on any replica can evict the stale copies on every other replica through a
// broadcast bus such as Redis Pub/Sub.
//
// Broadcasting is opt-in per call: Set(k, v, option.WithInvalidation()),
// Delete(k, option.WithDeleteInvalidation()) and
// Clear(option.WithClearInvalidation()). A plain write is local.
//
// The consistency contract, whatever the driver:
//
//   - A node never applies its own broadcasts: the writer keeps its new value
//     while every peer drops its copy.
//   - A broadcast is never dropped while the process lives: it waits in an
//     outbox that coalesces duplicate keys and retries with backoff while the
//     bus is down. Set and Delete never wait on the network; Flush waits until
//     everything queued so far has left the process.
//   - A node that may have missed messages (after a reconnect, a sequence gap,
//     a lapse of MaxStaleness or a message it cannot read) first catches up
//     from the driver's replay log (the Redis driver logs what it publishes
//     to a stream, the memory bus in memory): if the log proves it still
//     holds every entry after the node's position, the node applies what it
//     missed and serves again without clearing. Otherwise (the log was
//     trimmed past it, recreated, or is turned off) it clears its whole
//     cache before it serves again. InvalidationStats counts catch-ups and
//     clears by reason.
//   - A node serves cached values only while its subscription was proven
//     alive within MaxStaleness (default 3s). Past that, Get misses and
//     GetOrLoad loads without caching, until the link is back and the node
//     has caught up or cleared.
//   - A GetOrLoad whose key is invalidated while its loader runs returns the
//     loaded value but does not cache it.
//     A GetOrLoad that starts after an invalidation of its key (Delete, Clear,
//     a peer's broadcast, a gap) returned never joins a load that began
//     before it.
//   - Only explicit writes broadcast; loads, evictions and expiry never do.
//   - Any payload on the channel is handled without breaking the node.
//
// In a service: GetOrLoadContext shares one load among concurrent callers
// without letting one caller's cancellation fail the others; ReadyHandler
// (/readyz) reports a started replica, not its link (one Redis outage must
// not fail every replica's probe); WaitServing and LinkHandler tell when a
// replica serves from its cache; package invacachetest
// runs several replicas with injected faults in one test and checks reads
// against the staleness bound.
//
// The local store is github.com/maypok86/otter/v2 (adaptive W-TinyLFU
// eviction, lock-free reads, timer-wheel expiry). InMemoryConfig.Capacity is
// otter's maximum size; ShardCount and SweeperInterval are accepted for
// compatibility and have no effect. On top of otter the cache keeps per-entry
// TTL, a clear epoch (nothing written before a Clear, or a gap clear, is
// served after it, even when writes race the clear), race-safe loads, Stats,
// and a Close that stops otter's goroutines.
//
// Drivers register by name: a blank import of
// github.com/halilbulentorhon/invacache-go/invalidation/drivers/redis selects
// Type "redis". The in-process bus (Type "memory") lives in package
// invalidation/drivers/memory.
package invacache
