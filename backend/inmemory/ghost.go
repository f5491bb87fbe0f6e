package inmemory

// ghost remembers the tags (high halves of the hashes) of the last n keys
// evicted from the small queue. A key that comes back while still
// remembered skips probation (S3-FIFO) and competes for a place in main. It
// holds tags only, never keys or values; two keys of a shard share a tag
// with odds of 2^-32. Guarded by the owning shard's mu.
type ghost struct {
	ring  []uint32          // FIFO of tags, allocated on first use
	head  int               // next slot to overwrite once full
	size  int               // bound on remembered tags
	count map[uint32]uint32 // tag -> occurrences in ring
}

func (g *ghost) init(size uint32) {
	g.size = max(int(size), 1)
}

func (g *ghost) reset() {
	g.ring = g.ring[:0]
	g.head = 0
	clear(g.count)
}

func (g *ghost) add(h uint32) {
	if g.count == nil {
		g.count = make(map[uint32]uint32)
		g.ring = make([]uint32, 0, g.size)
	}
	if len(g.ring) < g.size {
		g.ring = append(g.ring, h)
	} else {
		old := g.ring[g.head]
		if c := g.count[old]; c > 1 {
			g.count[old] = c - 1
		} else {
			delete(g.count, old)
		}
		g.ring[g.head] = h
		g.head++
		if g.head == g.size {
			g.head = 0
		}
	}
	g.count[h]++
}

// remove reports whether h was remembered and forgets it. Its ring slot
// stays until overwritten; a hash re-added meanwhile may then be forgotten a
// little early, which only costs a ghost hit.
func (g *ghost) remove(h uint32) bool {
	if _, ok := g.count[h]; !ok {
		return false
	}
	delete(g.count, h)
	return true
}
