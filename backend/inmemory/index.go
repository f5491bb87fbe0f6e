package inmemory

// table maps keys to arena slots: open addressing with linear probing over
// one uint64 per slot, the high 32 bits of the key's hash (tag) above the
// slot number plus one (0 = empty). One hash computation serves shard
// choice, probe start and tag; a lookup usually touches one cache line of
// the table and then the entry. Deletion shifts later entries back instead
// of leaving tombstones, so probe runs stay short under churn. Guarded by
// the owning shard's lock.
type table struct {
	slots []uint64 // len is a power of two; load kept at most 3/4
}

func tagOf(h uint64) uint32 { return uint32(h >> 32) }

func (t *table) init() { t.slots = make([]uint64, 8) }

func (t *table) reset() { clear(t.slots) }

// insert records slot i for a key with hash h; the key must be absent and n
// keys must be indexed already. (The count lives with the caller, which
// keeps this struct to one slice header on the shard's first cache line.)
func (t *table) insert(h uint64, i uint32, n int) {
	if (n+1)*4 > len(t.slots)*3 {
		t.grow()
	}
	t.place(uint64(tagOf(h))<<32 | uint64(i+1))
}

func (t *table) place(s uint64) {
	mask := uint32(len(t.slots) - 1)
	for p := uint32(s>>32) & mask; ; p = (p + 1) & mask {
		if t.slots[p] == 0 {
			t.slots[p] = s
			return
		}
	}
}

func (t *table) grow() {
	old := t.slots
	t.slots = make([]uint64, 2*len(old))
	for _, s := range old {
		if s != 0 {
			t.place(s)
		}
	}
}

// delete removes the slot holding arena slot i for a key with tag, if
// present.
func (t *table) delete(tag uint32, i uint32) {
	mask := uint32(len(t.slots) - 1)
	want := uint64(tag)<<32 | uint64(i+1)
	p := tag & mask
	for t.slots[p] != want {
		if t.slots[p] == 0 {
			return
		}
		p = (p + 1) & mask
	}
	t.slots[p] = 0
	// Backward shift: move each later member of the run into the hole if
	// the hole lies on its probe path (its displacement covers the hole).
	for j := (p + 1) & mask; t.slots[j] != 0; j = (j + 1) & mask {
		home := uint32(t.slots[j]>>32) & mask
		if (j-home)&mask >= (j-p)&mask {
			t.slots[p] = t.slots[j]
			t.slots[j] = 0
			p = j
		}
	}
}
