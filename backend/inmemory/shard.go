package inmemory

import (
	"math"
	"sync/atomic"
)

// nilIdx marks the end of a list and an empty free list.
const nilIdx = ^uint32(0)

// An entry's meta word holds two saturating counters bumped by readers:
// bits 0-1 the S3-FIFO access counter (0..3), enough to tell one-hit wonders
// from reused entries; bits 2-5 hits not yet added to the shard's frequency
// sketch (0..15). Once both are saturated a read writes nothing, so hot keys
// do not bounce their cache line between cores.
// Bits 8-9 hold the entry's queue (qNone, qSmall, qMain); only writers
// change them, and readers never run alongside writers, so a reader's store
// of the whole word cannot undo a queue change.
const (
	freqMask    = 3
	pendingOne  = 1 << 2
	pendingMask = 15 << 2
	queueShift  = 8
	queueMask   = 3 << queueShift
)

// bump records one access in a meta word. Callers hold the shard lock in
// either mode; concurrent readers may lose an increment, which is harmless.
func bump(m *uint32) {
	old := atomic.LoadUint32(m)
	v := old
	if v&freqMask != freqMask {
		v++
	}
	if v&pendingMask != pendingMask {
		v += pendingOne
	}
	if v != old {
		atomic.StoreUint32(m, v)
	}
}

// Queue membership of an entry slot.
const (
	qNone  uint32 = iota // free slot
	qSmall               // probationary FIFO (new keys)
	qMain                // protected FIFO with reinsertion
)

// entry is one slot of a shard's arena. Every field except meta is guarded
// by the shard's mu (written under the write lock, read under either lock);
// meta is also bumped by readers holding only the read lock, so it is
// accessed atomically.
type entry[V any] struct {
	key        string
	value      V
	expire     int64  // deadline on the store's clock; 0 = never
	prev, next uint32 // queue links (next doubles as the free-list link)
	tag        uint32 // high half of the key's hash: table tag, ghost and sketch key
	meta       uint32 // atomic: access counter, pending hits, queue (see bump)
}

// queue returns the queue the entry is on.
func (e *entry[V]) queue() uint32 { return atomic.LoadUint32(&e.meta) & queueMask >> queueShift }

// setMeta stores a new access counter and pending count, keeping the queue.
// Caller holds the write lock.
func (e *entry[V]) setMeta(counters uint32) {
	atomic.StoreUint32(&e.meta, atomic.LoadUint32(&e.meta)&queueMask|counters)
}

// list is an intrusive FIFO over arena slots: new entries enter at head,
// eviction looks at tail.
type list struct {
	head, tail uint32
	n          uint32
}

// shard holds a slice of the key space. mu guards every field except the
// atomic counters.
type shard[V any] struct {
	// The first cache line holds what a Get hit touches: the lock (which
	// also counts hits) and the two slice headers of the lookup, which
	// writers change only when the arena or table grows.
	mu      rwLock
	entries []entry[V] // arena; freed slots are chained from free
	index   table      // key hash -> slot in entries

	misses atomic.Uint64
	hits   atomic.Uint64 // hits folded from mu's count; written under mu
	seen   uint64        // mu.count() at the last fold
	free   uint32        // head of the free-slot list
	small  list          // S3-FIFO small queue
	main   list          // S3-FIFO main queue
	ghost  ghost         // tags of keys recently evicted from small
	freq   sketch        // recent access frequency by key tag
	// nextExpiry is at most the earliest deadline of any entry (noExpiry
	// if none), so the sweeper can skip the shard until then.
	nextExpiry int64
	cap        uint32 // hard bound on small.n + main.n
	smallN     uint32 // target size of the small queue

	// Written under mu, read lock-free by Stats.
	evictions, expirations atomic.Uint64

	_ [shardPad]byte // round the size to whole cache lines
}

// shardPad makes unsafe.Sizeof(shard) a multiple of 64 (checked by a test),
// so with a line-aligned array every shard's first line is its own.
const shardPad = 16

// noExpiry is nextExpiry of a shard without deadlines.
const noExpiry = math.MaxInt64

func (sh *shard[V]) init(capacity int) {
	sh.nextExpiry = noExpiry
	sh.cap = uint32(capacity)
	sh.smallN = max(1, sh.cap*smallPermille/1000)
	sh.index.init()
	sh.free = nilIdx
	sh.small = list{head: nilIdx, tail: nilIdx}
	sh.main = list{head: nilIdx, tail: nilIdx}
	sh.ghost.init((sh.cap - min(sh.smallN, sh.cap-1)) * ghostPercent / 100)
}

// reset drops every entry, keeping allocated memory for reuse.
func (sh *shard[V]) reset() {
	sh.index.reset()
	clear(sh.entries) // release keys and values to the GC
	sh.entries = sh.entries[:0]
	sh.free = nilIdx
	sh.small = list{head: nilIdx, tail: nilIdx}
	sh.main = list{head: nilIdx, tail: nilIdx}
	sh.ghost.reset()
	sh.freq.reset()
}

// set inserts or updates key. Caller holds mu for writing.
func (sh *shard[V]) set(key string, h uint64, v V, exp, now int64) {
	if i, ok := sh.lookup(key, h); ok {
		e := &sh.entries[i]
		e.value = v
		e.expire = exp
		bump(&e.meta)
		sh.noteExpiry(exp)
		return
	}
	tag := tagOf(h)
	n := sh.small.n + sh.main.n
	if n >= sh.cap/2 {
		sh.freq.ensure(sh.cap)
	}
	sh.freq.add(tag, 1)
	toMain := sh.ghost.remove(tag)
	if n >= sh.cap {
		// A key back from the ghost enters main only if it is more
		// popular than main's next victim (TinyLFU admission); this keeps
		// main stable under loops slightly larger than the cache.
		// While main is under its share it takes ghost keys freely.
		if !toMain || sh.main.n < sh.cap-sh.smallN {
			sh.evict(now)
		} else if !sh.admit(tag, now) {
			toMain = false
			sh.evict(now)
		}
	}
	i := sh.alloc()
	e := &sh.entries[i]
	e.key = key
	e.value = v
	e.expire = exp
	e.tag = tag
	sh.noteExpiry(exp)
	atomic.StoreUint32(&e.meta, 0)
	sh.index.insert(h, i, int(sh.small.n+sh.main.n))
	if toMain {
		sh.push(&sh.main, i, qMain)
	} else {
		sh.push(&sh.small, i, qSmall)
	}
}

// lookup returns the arena slot of key. Caller holds mu (either mode).
func (sh *shard[V]) lookup(key string, h uint64) (uint32, bool) {
	tag := tagOf(h)
	slots := sh.index.slots
	mask := uint32(len(slots) - 1)
	for p := tag & mask; ; p = (p + 1) & mask {
		s := slots[p]
		if s == 0 {
			return 0, false
		}
		if uint32(s>>32) == tag {
			if i := uint32(s) - 1; sh.entries[i].key == key {
				return i, true
			}
		}
	}
}

// alloc returns a free arena slot, growing the arena up to cap.
func (sh *shard[V]) alloc() uint32 {
	if i := sh.free; i != nilIdx {
		sh.free = sh.entries[i].next
		return i
	}
	if len(sh.entries) == cap(sh.entries) {
		// Grow geometrically but never beyond the shard's bound, so a
		// full store carries no slack.
		n := min(max(2*cap(sh.entries), 8), int(sh.cap))
		grown := make([]entry[V], len(sh.entries), n)
		copy(grown, sh.entries)
		sh.entries = grown
	}
	sh.entries = append(sh.entries, entry[V]{})
	return uint32(len(sh.entries) - 1)
}

// remove unlinks slot i, forgets its key and frees the slot.
func (sh *shard[V]) remove(i uint32) {
	e := &sh.entries[i]
	if e.queue() == qSmall {
		sh.unlink(&sh.small, i)
	} else {
		sh.unlink(&sh.main, i)
	}
	sh.index.delete(e.tag, i)
	*e = entry[V]{next: sh.free}
	sh.free = i
}

func (sh *shard[V]) push(l *list, i uint32, q uint32) {
	e := &sh.entries[i]
	atomic.StoreUint32(&e.meta, atomic.LoadUint32(&e.meta)&^queueMask|q<<queueShift)
	e.prev = nilIdx
	e.next = l.head
	if l.head != nilIdx {
		sh.entries[l.head].prev = i
	} else {
		l.tail = i
	}
	l.head = i
	l.n++
}

func (sh *shard[V]) unlink(l *list, i uint32) {
	e := &sh.entries[i]
	if e.prev != nilIdx {
		sh.entries[e.prev].next = e.next
	} else {
		l.head = e.next
	}
	if e.next != nilIdx {
		sh.entries[e.next].prev = e.prev
	} else {
		l.tail = e.prev
	}
	e.prev, e.next = nilIdx, nilIdx
	l.n--
}

// evict removes exactly one entry (if any), following S3-FIFO: the small
// queue is drained while it is over its share, entries that were reused
// there graduate to main instead of leaving; main is a FIFO with
// reinsertion (a CLOCK). Expired entries met on the way leave first.
func (sh *shard[V]) evict(now int64) {
	if sh.small.n > 0 && (sh.small.n >= sh.smallN || sh.main.n == 0) {
		if sh.evictSmall(now) {
			return
		}
	}
	sh.evictMain(now)
}

func (sh *shard[V]) evictSmall(now int64) bool {
	for sh.small.n > 0 {
		i := sh.small.tail
		if sh.dropIfExpired(i, now) {
			return true
		}
		e := &sh.entries[i]
		if m := atomic.LoadUint32(&e.meta); m&freqMask > 0 {
			// Reused while probationary: promote.
			sh.freq.add(e.tag, (m&pendingMask)/pendingOne)
			sh.unlink(&sh.small, i)
			e.setMeta(0)
			sh.push(&sh.main, i, qMain)
			if sh.main.n > sh.cap-sh.smallN {
				sh.evictMain(now)
				return true
			}
			continue
		}
		sh.ghost.add(e.tag)
		sh.remove(i)
		sh.evictions.Add(1)
		return true
	}
	return false
}

func (sh *shard[V]) evictMain(now int64) {
	for sh.main.n > 0 {
		i := sh.main.tail
		if sh.dropIfExpired(i, now) {
			return
		}
		if sh.passOver(i) {
			continue
		}
		sh.remove(i)
		sh.evictions.Add(1)
		return
	}
	// main empty: fall back to small (only reachable from evict when small
	// was under its share).
	sh.evictSmall(now)
}

// passOver gives main's tail entry i another round if it was accessed since
// the hand last passed (decrementing its counter, flushing its pending hits
// to the sketch) and reports whether it did.
func (sh *shard[V]) passOver(i uint32) bool {
	e := &sh.entries[i]
	m := atomic.LoadUint32(&e.meta)
	if m&freqMask == 0 {
		return false
	}
	sh.freq.add(e.tag, (m&pendingMask)/pendingOne)
	e.setMeta(m&freqMask - 1)
	sh.unlink(&sh.main, i)
	sh.push(&sh.main, i, qMain)
	return true
}

// admit makes room in main for a key with tag coming back from the ghost if
// it is estimated more popular than main's next victim, and reports whether
// it did. The full shard stays within cap either way.
func (sh *shard[V]) admit(tag uint32, now int64) bool {
	for sh.main.n > 0 {
		i := sh.main.tail
		if sh.dropIfExpired(i, now) {
			return true
		}
		if sh.passOver(i) {
			continue
		}
		// A victim's hits since the last pass are in its counter, which
		// is 0 here, so the sketch holds its whole recent history.
		if sh.freq.estimate(tag) <= sh.freq.estimate(sh.entries[i].tag) {
			return false
		}
		sh.remove(i)
		sh.evictions.Add(1)
		return true
	}
	return false
}

// dropIfExpired removes slot i if its deadline has passed.
func (sh *shard[V]) dropIfExpired(i uint32, now int64) bool {
	if e := &sh.entries[i]; e.expire == 0 || e.expire > now || e.queue() == qNone {
		return false
	}
	sh.remove(i)
	sh.expirations.Add(1)
	return true
}

// Policy parameters, chosen with bench's hit-ratio report: a 1% small queue
// beat the paper's 10% on every Zipf, scan and loop trace there, and a ghost
// half the size of main did as well as a full one with less memory.
const (
	smallPermille = 10 // small queue share of a shard, per mille
	ghostPercent  = 50 // ghost size as a percentage of main
)

// foldHits adds the hits counted by the lock since the last fold to hits.
// Caller holds mu for writing. The lock's count wraps at 2^42, so a shard
// must be folded (by Stats or a sweep) at least once per 4.4e12 hits.
func (sh *shard[V]) foldHits() {
	c := sh.mu.count()
	sh.hits.Add((c - sh.seen) & (1<<42 - 1))
	sh.seen = c
}

// noteExpiry lowers nextExpiry to a new deadline (0 = none).
func (sh *shard[V]) noteExpiry(exp int64) {
	if exp != 0 && exp < sh.nextExpiry {
		sh.nextExpiry = exp
	}
}
