package simdb

import (
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// DB holds a version per key. It is safe for concurrent use.
type DB struct {
	keys    []string
	latency time.Duration // simulated read latency

	versions []atomic.Uint64 // versions[i] belongs to keys[i]
	locks    []sync.Mutex    // locks[i] serializes writes of keys[i]
	index    map[string]int  // read-only after New

	reads  atomic.Uint64
	writes atomic.Uint64
}

// New returns a database of n keys named prefix0 … prefix(n-1), all at
// version 0. latency is added to every Read, like a network round trip.
func New(prefix string, n int, latency time.Duration) *DB {
	if n < 1 {
		n = 1
	}
	db := &DB{
		keys:     make([]string, n),
		latency:  latency,
		versions: make([]atomic.Uint64, n),
		locks:    make([]sync.Mutex, n),
		index:    make(map[string]int, n),
	}
	for i := range db.keys {
		db.keys[i] = prefix + strconv.Itoa(i)
		db.index[db.keys[i]] = i
	}
	return db
}

// Len is the number of keys.
func (db *DB) Len() int { return len(db.keys) }

// Key returns the i-th key's name.
func (db *DB) Key(i int) string { return db.keys[i] }

// Read returns the key's current version (0 for an unknown key), after the
// simulated latency.
func (db *DB) Read(key string) uint64 {
	if db.latency > 0 {
		time.Sleep(db.latency)
	}
	db.reads.Add(1)
	i, ok := db.index[key]
	if !ok {
		return 0
	}
	return db.versions[i].Load()
}

// Write increments the key's version and calls then with the new version
// while the key's write lock is held (the writer updates its cache there, so
// two writers of one key apply their cache writes in version order). It
// returns the new version; an unknown key returns 0 and does not call then.
func (db *DB) Write(key string, then func(version uint64)) uint64 {
	i, ok := db.index[key]
	if !ok {
		return 0
	}
	db.locks[i].Lock()
	defer db.locks[i].Unlock()
	v := db.versions[i].Add(1)
	db.writes.Add(1)
	if then != nil {
		then(v)
	}
	return v
}

// Reads is the number of Read calls (cache loads).
func (db *DB) Reads() uint64 { return db.reads.Load() }

// Writes is the number of Write calls.
func (db *DB) Writes() uint64 { return db.writes.Load() }

// ZipfPicker returns a function that picks keys with Zipf popularity of
// exponent s (> 1): key 0 is the hottest. Each picker has its own random
// stream from seed and is not safe for concurrent use.
func (db *DB) ZipfPicker(seed uint64, s float64) func() string {
	z := rand.NewZipf(rand.New(rand.NewPCG(seed, 0x5eed)), s, 1, uint64(len(db.keys)-1))
	return func() string { return db.keys[z.Uint64()] }
}
