// Package inmemory is InvaCache's local store: a sharded, bounded,
// concurrent map with per-entry expiry and a scan-resistant eviction policy.
//
// Sharding. Keys are hashed with hash/maphash under a seed chosen per Store
// (maphash.MakeSeed), so hash flooding across processes is not possible and
// hashing never allocates. The low bits of the hash pick one of ShardCount
// shards (a power of two). Each shard has its own reader-writer lock: Get
// takes only the read lock and never allocates; writes take the write lock.
// A reader that meets a writer spins briefly and only then blocks on the
// writer's mutex, instead of parking at once as with sync.RWMutex, which on
// a hot shard with a 75/25 read/write mix cost about half the throughput;
// the unlock of a hit also counts it, so a hit costs two atomic operations.
// A shard finds entries through an open-addressing table of 8-byte slots
// (hash tag and slot number) over an arena of entries, so one hash serves
// shard choice and lookup. Values are never read while a writer may change
// them, so the store is clean under the race detector; updates happen in
// place, so a Set of an existing key does not allocate either. KeyHash
// exposes the same hash so callers can stripe their own per-key state
// consistently with the store.
//
// Capacity and policy. Capacity is a hard bound: it is split across the
// shards and a shard evicts before it inserts beyond its share, so the store
// never holds more than Capacity entries. Eviction follows S3-FIFO (Yang et
// al., SOSP 2023) with a TinyLFU admission filter. New keys enter a small
// FIFO (1% of the shard); a key reused while there graduates to the main
// FIFO, others leave and their hash is remembered in a ghost FIFO. Main is a
// FIFO with reinsertion (a CLOCK) driven by a 2-bit access counter. A key
// that comes back while its hash is in the ghost enters main directly while
// main has room, and otherwise only if a count-min sketch of recent accesses
// rates it above main's next victim; this keeps main stable when a loop
// slightly larger than the cache would otherwise churn it. The read path
// only bumps two small saturating counters in the entry (access bit and hits
// not yet added to the sketch, which the eviction hand flushes under the
// write lock), and skips the write once both are saturated, so hot keys do
// not bounce cache lines between cores. A one-pass scan of cold keys cycles
// through the small queue only and leaves the reused (hot) entries in main,
// unlike LRU, which a scan flushes.
//
// Expiry. Set takes a TTL: positive is the entry's lifetime, zero means
// Config.DefaultTTL (itself zero for "never"), negative means never. Get
// checks the deadline against a monotonic clock and never returns an expired
// entry. Expired entries are removed by the eviction policy when met and by
// a background sweeper every SweepInterval, which walks each shard in chunks
// of 128 slots and releases the lock between chunks, so it never holds a
// shard for a full scan. Each shard tracks a lower bound of its earliest
// deadline, so shards with nothing due are skipped without a scan. The
// sweeper starts with the first entry that can expire; Close stops it and
// waits for it. Len counts entries held, which may include expired entries
// not yet swept (never more than Capacity).
package inmemory
