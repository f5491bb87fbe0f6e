package postgres

import (
	"sync"
	"sync/atomic"
	"time"
)

// Clear reasons, the keys of Stats.Clears.
const (
	ClearTruncate         = "truncate"          // a TRUNCATE of a mapped table
	ClearLargeTransaction = "large_transaction" // more keys than MaxTransactionKeys
	ClearUnknownValue     = "unknown_value"     // a template column's value was not in the stream (TOAST without the old row)
	ClearSchema           = "schema"            // a change to a table whose templates no longer resolve
	ClearSlotLost         = "slot_lost"         // the slot was invalidated (max_slot_wal_keep_size) and recreated
	ClearSlotRecreated    = "slot_recreated"    // the slot was missing at start while a marker said it had existed
	ClearSlotSkipped      = "slot_skipped"      // the slot's position is past what the relay published (recreated or advanced by hand)
	ClearNoMarker         = "no_marker"         // the slot exists but Redis has no marker (Redis lost it, or the slot predates the relay)
	ClearNewSystem        = "new_system"        // the marker is of another PostgreSQL system or database
)

// LatencyBuckets are the upper bounds, in seconds, of Stats.PublishLatency.
var LatencyBuckets = []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Histogram is a snapshot of a latency histogram: Counts[i] observations
// fell at or below LatencyBuckets[i] and above the bound before it; the
// last element counts those above every bound.
type Histogram struct {
	Counts []uint64
	Count  uint64
	Sum    float64 // seconds
}

// Stats is a snapshot of a relay's counters (see the README's metrics).
type Stats struct {
	Transactions   uint64            // committed transactions whose keys (or clear) were published
	KeysPublished  uint64            // keys published (after merging the transactions of one batch)
	Clears         map[string]uint64 // clears published, by reason (Clear* constants)
	Reconnects     uint64            // stream sessions restarted after an error
	LastAckedLSN   uint64            // the position last acknowledged to PostgreSQL
	SlotLagBytes   uint64            // the server's WAL end minus LastAckedLSN, as last seen
	PublishLatency Histogram         // commit (the commit time in the stream) → published in Redis
	Ready          bool              // holds the slot and streams
}

type stats struct {
	txs, keys, reconnects, acked, lag atomic.Uint64

	mu      sync.Mutex // guards clears and latency
	clears  map[string]uint64
	latency Histogram
}

func (s *stats) init() {
	s.clears = map[string]uint64{}
	s.latency.Counts = make([]uint64, len(LatencyBuckets)+1)
}

func (s *stats) clear(reason string) {
	s.mu.Lock()
	s.clears[reason]++
	s.mu.Unlock()
}

func (s *stats) observe(commits []time.Time, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range commits {
		d := max(now.Sub(c).Seconds(), 0)
		i := 0
		for i < len(LatencyBuckets) && d > LatencyBuckets[i] {
			i++
		}
		s.latency.Counts[i]++
		s.latency.Count++
		s.latency.Sum += d
	}
}

// Stats returns a snapshot of the relay's counters.
func (r *Relay) Stats() Stats {
	st := Stats{
		Transactions: r.st.txs.Load(), KeysPublished: r.st.keys.Load(), Reconnects: r.st.reconnects.Load(),
		LastAckedLSN: r.st.acked.Load(), SlotLagBytes: r.st.lag.Load(), Ready: r.ready.Load(),
		Clears: map[string]uint64{},
	}
	r.st.mu.Lock()
	for k, v := range r.st.clears {
		st.Clears[k] = v
	}
	st.PublishLatency = r.st.latency
	st.PublishLatency.Counts = append([]uint64(nil), r.st.latency.Counts...)
	r.st.mu.Unlock()
	return st
}
