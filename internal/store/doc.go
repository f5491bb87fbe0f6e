// Package store is the cache's local store: an adapter over
// github.com/maypok86/otter/v2 (adaptive W-TinyLFU eviction, lock-free
// reads, timer-wheel expiry) that adds what the cache's contract needs and
// otter does not give directly.
//
// Entries. Each otter value is an item: the user's value, the TTL the write
// asked for (otter's ExpiryCalculator reads it, so every entry has its own
// lifetime, and "never" is a deadline otter never reaches) and the store's
// clear epoch at the time of the write.
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
// Statistics. Hits and misses are counted in one slot per P: the counting
// goroutine is pinned to its P (runtime.procPin, as sync.Pool does), so it
// owns the slot and adds without an atomic read-modify-write, and parallel
// readers never write one shared cache line. Under the race detector, which
// cannot see that ownership, the slots are picked by stack address and
// added to atomically. Evictions (for size) and expirations are counted by
// otter's atomic deletion listener.
package store
