// Package metricset is the one definition of the metrics that the
// metrics/prometheus and metrics/otel adapters export from a cache's Stats:
// names, help, kind, unit, labels and how each value is read. Both adapters
// iterate All, so they export the same series (the OTel names translate to
// the Prometheus ones).
package metricset

import (
	"math"
	"time"

	"github.com/halilbulentorhon/invacache-go"
)

// Prefix starts every metric name.
const Prefix = "invacache"

// NameLabel is the label that names the cache a series belongs to.
const NameLabel = "name"

// Kind says how a metric's value behaves.
type Kind int

const (
	// Counter only grows over the cache's life.
	Counter Kind = iota
	// Gauge is a value at the time of the snapshot.
	Gauge
	// Histogram is a distribution read by Metric.Hist (Read is nil).
	Histogram
)

// Metric is one exported metric.
type Metric struct {
	// Name is the metric's name after the prefix, without unit or _total
	// suffix, words joined by '_' ("load_errors").
	Name string
	// Unit is "" or "seconds"; Prometheus names end in it.
	Unit string
	Kind Kind
	Help string
	// Label is the metric's label besides NameLabel ("reason"), or "".
	Label string
	// Distributed marks metrics of the invalidation link: exported only for
	// caches attached to a bus.
	Distributed bool
	// Read calls emit once per series of st: the Label's value ("" when
	// Label is "") and the series' value.
	Read func(st *invacache.Stats, emit func(label string, v float64))
	// Hist reads a Histogram: the count, the sum (in Unit) and the
	// cumulative count per upper bound (in Unit).
	Hist func(st *invacache.Stats) (count uint64, sum float64, buckets map[float64]uint64)
}

// PromName is the metric's Prometheus name: invacache_<name>[_<unit>][_total].
func (m Metric) PromName() string {
	n := Prefix + "_" + m.Name
	if m.Unit != "" {
		n += "_" + m.Unit
	}
	if m.Kind == Counter {
		n += "_total"
	}
	return n
}

// OTelName is the metric's OpenTelemetry instrument name, invacache.<name>;
// the unit is the instrument's unit (UCUM, see OTelUnit). An OpenTelemetry
// Prometheus exporter translates it to PromName.
func (m Metric) OTelName() string { return Prefix + "." + m.Name }

// OTelUnit is the metric's UCUM unit: "s" for seconds, "1" otherwise.
func (m Metric) OTelUnit() string {
	if m.Unit == "seconds" {
		return "s"
	}
	return "1"
}

// Exported reports whether m has series for a cache with these stats.
func (m Metric) Exported(st *invacache.Stats) bool { return !m.Distributed || st.Distributed }

func one(f func(*invacache.Stats) float64) func(*invacache.Stats, func(string, float64)) {
	return func(st *invacache.Stats, emit func(string, float64)) { emit("", f(st)) }
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// All lists every metric, in the order the adapters describe them.
var All = []Metric{
	{Name: "hits", Kind: Counter, Help: "Lookups (Get, GetOrLoad) answered from the cache.",
		Read: one(func(st *invacache.Stats) float64 { return float64(st.Hits) })},
	{Name: "misses", Kind: Counter, Label: "reason",
		Help: "Lookups not answered from the cache, by reason: not_found (the cache held no live entry), not_serving (the node may not serve: its link is not proven alive within MaxStaleness, or a gap is being handled).",
		Read: func(st *invacache.Stats, emit func(string, float64)) {
			emit("not_found", float64(st.Misses-st.NotServingMisses))
			emit("not_serving", float64(st.NotServingMisses))
		}},
	{Name: "loads", Kind: Counter, Help: "Loader calls made by GetOrLoad.",
		Read: one(func(st *invacache.Stats) float64 { return float64(st.Loads) })},
	{Name: "load_errors", Kind: Counter, Help: "Loader calls that returned an error or panicked.",
		Read: one(func(st *invacache.Stats) float64 { return float64(st.LoadErrors) })},
	{Name: "evictions", Kind: Counter, Help: "Entries removed to stay within the capacity.",
		Read: one(func(st *invacache.Stats) float64 { return float64(st.Evictions) })},
	{Name: "expirations", Kind: Counter, Help: "Entries removed because their TTL ran out.",
		Read: one(func(st *invacache.Stats) float64 { return float64(st.Expirations) })},
	{Name: "entries", Kind: Gauge, Help: "Entries held now.",
		Read: one(func(st *invacache.Stats) float64 { return float64(st.Len) })},

	{Name: "invalidations_requested", Kind: Counter, Distributed: true,
		Help: "Keys and clears (a clear counts 1) queued for broadcast by Set, Delete and Clear with invalidation.",
		Read: one(func(st *invacache.Stats) float64 { return float64(st.Invalidation.BroadcastsQueued) })},
	{Name: "invalidation_keys_sent", Kind: Counter, Distributed: true,
		Help: "Keys in published invalidation messages (after coalescing duplicates).",
		Read: one(func(st *invacache.Stats) float64 { return float64(st.Invalidation.KeysSent) })},
	{Name: "invalidation_clears_sent", Kind: Counter, Distributed: true,
		Help: "Whole-cache clears published.",
		Read: one(func(st *invacache.Stats) float64 { return float64(st.Invalidation.ClearsSent) })},
	{Name: "invalidation_messages_sent", Kind: Counter, Distributed: true,
		Help: "Invalidation messages published (one may carry many keys).",
		Read: one(func(st *invacache.Stats) float64 { return float64(st.Invalidation.MessagesSent) })},
	{Name: "invalidations_dropped", Kind: Counter, Distributed: true,
		Help: "Keys and clears still queued when Close gave up flushing (lost broadcasts).",
		Read: one(func(st *invacache.Stats) float64 { return float64(st.Invalidation.BroadcastsDropped) })},
	{Name: "invalidation_outbox_overflows", Kind: Counter, Distributed: true,
		Help: "Times the keys waiting to be broadcast passed OutboxMaxKeys or OutboxMaxBytes and collapsed into one clear of every peer.",
		Read: one(func(st *invacache.Stats) float64 { return float64(st.Invalidation.OutboxOverflows) })},
	{Name: "invalidation_messages_received", Kind: Counter, Distributed: true,
		Help: "Messages delivered by the subscription (own echoes included).",
		Read: one(func(st *invacache.Stats) float64 { return float64(st.Invalidation.MessagesReceived) })},
	{Name: "invalidation_messages_applied", Kind: Counter, Distributed: true,
		Help: "Peers' messages applied to the cache (envelopes and raw keys).",
		Read: one(func(st *invacache.Stats) float64 { return float64(st.Invalidation.MessagesApplied) })},
	{Name: "invalidation_messages_ignored_own", Kind: Counter, Distributed: true,
		Help: "The node's own messages received back and ignored (self-suppression).",
		Read: one(func(st *invacache.Stats) float64 { return float64(st.Invalidation.IgnoredOwn) })},
	{Name: "invalidation_messages_raw", Kind: Counter, Distributed: true,
		Help: "Raw payloads received (a bare key, or empty = clear), as an operator's redis-cli PUBLISH sends.",
		Read: one(func(st *invacache.Stats) float64 { return float64(st.Invalidation.RawKeys) })},
	{Name: "invalidation_messages_malformed", Kind: Counter, Distributed: true,
		Help: "Envelopes that failed to decode (each is also a gap).",
		Read: one(func(st *invacache.Stats) float64 { return float64(st.Invalidation.Malformed) })},
	{Name: "publish_failures", Kind: Counter, Distributed: true,
		Help: "Errors returned by the driver's Publish (the outbox retries).",
		Read: one(func(st *invacache.Stats) float64 { return float64(st.Invalidation.PublishFailures) })},
	{Name: "publish_retries", Kind: Counter, Distributed: true,
		Help: "Publish attempts after a failure.",
		Read: one(func(st *invacache.Stats) float64 { return float64(st.Invalidation.PublishRetries) })},
	{Name: "publish_latency", Unit: "seconds", Kind: Histogram, Distributed: true,
		Help: "Time from the request of a published batch's oldest broadcast to the driver accepting the batch (outbox wait, retries, publish round trip).",
		Hist: func(st *invacache.Stats) (uint64, float64, map[float64]uint64) {
			inv := &st.Invalidation
			b := make(map[float64]uint64, len(inv.PublishLatencyBuckets))
			for i, le := range invacache.PublishLatencyBounds() {
				b[le.Seconds()] = inv.PublishLatencyBuckets[i]
			}
			return inv.PublishLatencyCount, inv.PublishLatencySum.Seconds(), b
		}},
	{Name: "outbox_depth", Kind: Gauge, Distributed: true,
		Help: "Keys and clears (a clear counts 1) queued or being published now.",
		Read: one(func(st *invacache.Stats) float64 { return float64(st.Invalidation.OutboxDepth) })},
	{Name: "gaps", Kind: Counter, Distributed: true,
		Help: "Possible losses of messages detected: link (re)established, sequence jump, unknown version, malformed message, liveness lapse.",
		Read: one(func(st *invacache.Stats) float64 { return float64(st.Invalidation.Gaps) })},
	{Name: "clears", Kind: Counter, Label: "reason", Distributed: true,
		Help: "Whole-cache clears by reason: peer_clear is a peer's Clear with invalidation; every other reason is a gap that could not be caught up from the replay log (first_subscribe, replay_disabled, no_cursor, no_continuity, replay_error, malformed, unknown_version, id_backwards, unlogged_peer, gap_flood).",
		Read: func(st *invacache.Stats, emit func(string, float64)) {
			for _, r := range invacache.ClearReasons() {
				emit(r, float64(st.Invalidation.ClearsByReason[r]))
			}
		}},
	{Name: "catch_ups", Kind: Counter, Distributed: true,
		Help: "Gaps recovered by replaying the driver's log, without clearing the cache.",
		Read: one(func(st *invacache.Stats) float64 { return float64(st.Invalidation.CatchUps) })},
	{Name: "keys_replayed", Kind: Counter, Distributed: true,
		Help: "Keys invalidated from replayed log entries.",
		Read: one(func(st *invacache.Stats) float64 { return float64(st.Invalidation.KeysReplayed) })},
	{Name: "outage_reads", Kind: Counter, Distributed: true,
		Help: "Reads served past MaxStaleness since the last proof of life, under OutageStaleness while Redis was unreachable.",
		Read: one(func(st *invacache.Stats) float64 { return float64(st.Invalidation.OutageReads) })},
	{Name: "link_up", Kind: Gauge, Distributed: true,
		Help: "1 while the subscription is established, else 0.",
		Read: one(func(st *invacache.Stats) float64 { return b2f(st.Invalidation.LinkUp) })},
	{Name: "serving", Kind: Gauge, Distributed: true,
		Help: "1 while cached values may be served (link proven alive within MaxStaleness, or within OutageStaleness while Redis is unreachable; no gap pending), else 0.",
		Read: one(func(st *invacache.Stats) float64 { return b2f(st.Invalidation.Serving) })},
	{Name: "link_alive_age", Unit: "seconds", Kind: Gauge, Distributed: true,
		Help: "Seconds since the subscription was last proven alive (+Inf: never).",
		Read: one(func(st *invacache.Stats) float64 {
			if st.Invalidation.LastAlive.IsZero() {
				return math.Inf(1)
			}
			return st.Invalidation.SinceAlive.Seconds()
		})},
}

// Fixture returns the stats the adapters' tests export: a distributed
// cache's with a distinct value in every field (so a field exported under
// the wrong name shows; its link was proven alive 1.5 s ago) and a local
// cache's.
func Fixture() (distributed, local invacache.Stats) {
	distributed = invacache.Stats{
		Hits: 10, Misses: 7, NotServingMisses: 3, Loads: 5, LoadErrors: 1,
		Evictions: 2, Expirations: 4, Len: 42, Distributed: true,
		Invalidation: invacache.InvalidationStats{
			BroadcastsQueued: 20, KeysSent: 18, ClearsSent: 11, MessagesSent: 6,
			PublishRetries: 13, PublishFailures: 12, BroadcastsDropped: 9, OutboxOverflows: 23,
			MessagesReceived: 30, MessagesApplied: 24, IgnoredOwn: 16, RawKeys: 8,
			Malformed: 14, Gaps: 17, ClearsOnGap: 15, CatchUps: 21, KeysReplayed: 22, OutageReads: 25,
			ClearsByReason:      map[string]uint64{"first_subscribe": 1, "no_continuity": 14, "peer_clear": 2},
			PublishLatencyCount: 5, PublishLatencySum: 1250 * time.Millisecond,
			PublishLatencyBuckets: [16]uint64{0, 1, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 4, 4, 4, 4},
			OutboxDepth:           19, LinkUp: true, Serving: false,
			LastAlive: time.Now().Add(-1500 * time.Millisecond), SinceAlive: 1500 * time.Millisecond,
		},
	}
	local = invacache.Stats{Hits: 1, Misses: 2, Loads: 3, Expirations: 5, Len: 6}
	return distributed, local
}
