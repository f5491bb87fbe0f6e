package inmemory

import "math/bits"

// sketch is a count-min sketch of 4-bit counters (TinyLFU): an estimate of
// how often each key tag was accessed recently. Counters are halved every
// 10 x capacity additions, so old popularity fades. It is fed under the
// shard's write lock only: misses count when they happen, hits are counted
// by readers in the entry's meta word and flushed here when the eviction
// hand passes the entry. Guarded by the owning shard's mu.
type sketch struct {
	table []uint64 // 16 counters per word; nil until the shard is half full
	mask  uint64   // len(table)-1
	adds  uint32   // additions since the last halving
	limit uint32   // halve after this many additions
}

// ensure allocates the table for a shard of the given capacity: 8 counters
// (4 bytes) per entry.
func (s *sketch) ensure(capacity uint32) {
	if s.table != nil {
		return
	}
	words := uint64(1) << bits.Len64(uint64(max(capacity, 16)/2-1))
	s.table = make([]uint64, words)
	s.mask = words - 1
	s.limit = 10 * max(capacity, 16)
}

func (s *sketch) reset() {
	clear(s.table)
	s.adds = 0
}

// slot returns the word index and bit offset of the i-th counter of h.
func (s *sketch) slot(h uint32, i int) (uint64, uint64) {
	x := (uint64(h) + uint64(i)*0x9E3779B97F4A7C15) * 0xBF58476D1CE4E5B9
	x ^= x >> 31
	return (x >> 8) & s.mask, (x & 15) << 2
}

// add counts n accesses of h.
func (s *sketch) add(h uint32, n uint32) {
	if s.table == nil || n == 0 {
		return
	}
	for i := range 4 {
		w, off := s.slot(h, i)
		c := (s.table[w] >> off) & 15
		nc := min(c+uint64(n), 15)
		s.table[w] += (nc - c) << off
	}
	s.adds += n
	if s.adds >= s.limit {
		for i, w := range s.table {
			s.table[i] = (w >> 1) & 0x7777777777777777
		}
		s.adds /= 2
	}
}

// estimate returns the smallest of h's counters.
func (s *sketch) estimate(h uint32) uint32 {
	if s.table == nil {
		return 0
	}
	m := uint64(15)
	for i := range 4 {
		w, off := s.slot(h, i)
		m = min(m, (s.table[w]>>off)&15)
	}
	return uint32(m)
}
