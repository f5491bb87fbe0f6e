package invacachetest

import (
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Bound is the staleness a reader tolerates, as the sum of named parts so
// it can be printed.
type Bound struct {
	MaxStaleness  time.Duration // the cache's InvalidationConfig.MaxStaleness
	PublishWindow time.Duration // acknowledged message still in flight to a live subscriber
	Slack         time.Duration // scheduling noise of the machine running the check
}

// Total is the sum of the parts.
func (b Bound) Total() time.Duration { return b.MaxStaleness + b.PublishWindow + b.Slack }

// String prints the bound with its parts, e.g.
// "3.6s = MaxStaleness 3s + publish window 100ms + slack 500ms".
func (b Bound) String() string {
	return fmt.Sprintf("%v = MaxStaleness %v + publish window %v + slack %v", b.Total(), b.MaxStaleness, b.PublishWindow, b.Slack)
}

// ackRetention is how long the checker remembers individual acknowledgements.
// Reads must be judged within ackRetention − Bound of their start (they are,
// right after they return). A read that returns a version superseded more
// than ackRetention ago is still counted stale; only its age (MaxAge) is then
// underestimated, to about ackRetention.
const ackRetention = 30 * time.Second

// ack is one acknowledged write. maxVersion is the highest version
// acknowledged for the key up to and including this ack (acks are appended
// in time order, versions may be acknowledged out of order by racing writers).
type ack struct {
	at         time.Time
	maxVersion uint64
}

// Checker records acknowledged writes and judges reads against a Bound (see
// the package documentation for the definition of a stale read). It is safe
// for concurrent use. It remembers individual acknowledgements for 30s, so
// judge each read right after it returns.
type Checker struct {
	bound time.Duration

	mu   sync.Mutex
	acks map[string][]ack // guarded by mu; per key, in acknowledgement order

	reads  atomic.Uint64
	stale  atomic.Uint64
	maxAge atomic.Int64 // nanoseconds; see MaxAge

	exampleMu sync.Mutex
	example   string // guarded by exampleMu; the first stale read, for the report
}

// NewChecker returns a checker for the bound.
func NewChecker(b Bound) *Checker {
	return &Checker{bound: b.Total(), acks: map[string][]ack{}}
}

// Ack records that version of key is acknowledged now.
func (c *Checker) Ack(key string, version uint64) { c.AckAt(key, version, time.Now()) }

// AckAt records that version of key was acknowledged at at. Calls for one
// key must come with non-decreasing times (time.Now under one clock does).
func (c *Checker) AckAt(key string, version uint64, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	list := c.acks[key]
	maxV := version
	if n := len(list); n > 0 {
		if list[n-1].maxVersion > maxV {
			maxV = list[n-1].maxVersion
		}
		if at.Before(list[n-1].at) {
			at = list[n-1].at // keep the list sorted if a caller's clock read raced
		}
	}
	list = append(list, ack{at: at, maxVersion: maxV})
	// Forget acks older than ackRetention, keeping the newest of them: it
	// carries their maxVersion, which is all a read needs from them. The
	// prefix is cut in place, and only once it is half the list, so memory
	// stays bounded on long runs at amortized O(1) per ack.
	cutoff := at.Add(-ackRetention)
	if k := sort.Search(len(list), func(i int) bool { return !list[i].at.Before(cutoff) }) - 1; k > 0 && 2*k >= len(list) {
		list = list[:copy(list, list[k:])]
	}
	c.acks[key] = list
}

// Read judges a read of key that started at start and returned version, and
// reports whether it was stale.
func (c *Checker) Read(key string, version uint64, start time.Time) bool {
	return c.ReadWithin(key, version, start, c.bound)
}

// ReadWithin is Read against bound instead of the checker's Bound: for a
// read its node served under another promise (the cache's OutageStaleness,
// plus the same publish window and slack).
func (c *Checker) ReadWithin(key string, version uint64, start time.Time, bound time.Duration) bool {
	c.reads.Add(1)
	limit := start.Add(-bound)
	c.mu.Lock()
	list := c.acks[key]
	// Last ack strictly before limit.
	i := sort.Search(len(list), func(i int) bool { return !list[i].at.Before(limit) }) - 1
	var newest uint64
	if i >= 0 {
		newest = list[i].maxVersion
	}
	// First ack of a version newer than the one read: the read's age is how
	// long after it the read started (maxVersion is non-decreasing).
	j := sort.Search(len(list), func(j int) bool { return list[j].maxVersion > version })
	if j < len(list) {
		age := int64(start.Sub(list[j].at))
		for cur := c.maxAge.Load(); age > cur && !c.maxAge.CompareAndSwap(cur, age); cur = c.maxAge.Load() {
		}
	}
	c.mu.Unlock()
	if newest <= version {
		return false
	}
	if c.stale.Add(1) == 1 {
		c.exampleMu.Lock()
		c.example = fmt.Sprintf("key %q read at %s returned version %d; version %d was acknowledged before %s",
			key, start.Format("15:04:05.000"), version, newest, limit.Format("15:04:05.000"))
		c.exampleMu.Unlock()
	}
	return true
}

// Reads is the number of reads judged.
func (c *Checker) Reads() uint64 { return c.reads.Load() }

// MaxAge is the largest staleness observed: over the reads that returned an
// old version, the longest time between the acknowledgement of a newer
// version and the start of the read (0 when every read was fresh). A read is
// stale when its age exceeds the bound.
func (c *Checker) MaxAge() time.Duration { return time.Duration(c.maxAge.Load()) }

// Stale is the number of stale reads.
func (c *Checker) Stale() uint64 { return c.stale.Load() }

// FirstStale describes the first stale read, or "" when there was none.
func (c *Checker) FirstStale() string {
	c.exampleMu.Lock()
	defer c.exampleMu.Unlock()
	return c.example
}

// Verify fails t (Errorf) when any judged read was stale, naming how many
// and the first one.
func (c *Checker) Verify(t testing.TB) {
	t.Helper()
	if n := c.Stale(); n > 0 {
		t.Errorf("invacachetest: %d of %d reads were stale beyond the bound %v; first: %s",
			n, c.Reads(), time.Duration(c.bound), c.FirstStale())
	}
}
