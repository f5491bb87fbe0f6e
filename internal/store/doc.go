// Package store is the cache's local store: an adapter over
// github.com/maypok86/otter/v2 (adaptive W-TinyLFU eviction, lock-free
// reads, timer-wheel expiry) that adds what the cache's contract needs and
// otter does not give directly.
//
// Entries. Each otter value is an item: the user's value, its lifetime and
// the store's clear epoch at the time of the write.
//
// Expiry. A store with a default TTL (every entry expires unless its write
// says otherwise) gives otter an ExpiryCalculator that reads the TTL the
// write asked for, and otter's timer wheel removes expired entries. A store
// without one has no otter expiry at all, so its reads never touch a clock:
// otter then reads no time on Get or Set, as with raw otter. An entry that
// a write gives a TTL there carries its deadline, which Get checks (reading
// the clock only for such entries); an entry found expired is never
// returned, and is removed by that Get (counted in Stats.Expirations) or,
// if never read again, by the size policy like any cold entry.
//
// Clear. otter's InvalidateAll is not atomic against concurrent writes: a Set
// racing it may survive. Clear therefore bumps the store's epoch before it
// invalidates, and Get serves an item only if it carries the current epoch,
// so nothing written before a Clear is ever served after it, whatever raced.
// Such leftovers are dropped by the policy like any cold entry.
//
// Conditional writes. SetIf stores through otter's Compute, whose function
// runs under the key's bucket lock; Delete (otter's Invalidate) takes the
// same lock, so a check in SetIf's function and the write cannot interleave
// with a removal of that key.
//
// Goroutines. otter runs maintenance on an executor and, with expiry, a
// periodic clean-up goroutine. The store gives otter an executor that counts
// its goroutines; Close stops the periodic one and waits for the others, and
// after Close maintenance runs on the calling goroutine.
//
// Statistics. Hits and misses are counted on padded atomic stripes picked
// by the caller's stack address, so parallel readers rarely write one cache
// line; a caller that decides after Lookup whether to serve counts with
// CountHit and CountMiss. Evictions (for size) and expirations by otter are
// counted by otter's atomic deletion listener.
package store
