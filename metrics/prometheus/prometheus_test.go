package prometheus_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/internal/metricset"
	invaprom "github.com/halilbulentorhon/invacache-go/metrics/prometheus"
	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func distributed() invacache.Stats { d, _ := metricset.Fixture(); return d }

func local() invacache.Stats { _, l := metricset.Fixture(); return l }

const wantExposition = `
# HELP invacache_catch_ups_total Gaps recovered by replaying the driver's log, without clearing the cache.
# TYPE invacache_catch_ups_total counter
invacache_catch_ups_total{name="users"} 21
# HELP invacache_clears_total Whole-cache clears by reason: peer_clear is a peer's Clear with invalidation; every other reason is a gap that could not be caught up from the replay log (first_subscribe, replay_disabled, no_cursor, no_continuity, replay_error, malformed, unknown_version, id_backwards, unlogged_peer, gap_flood).
# TYPE invacache_clears_total counter
invacache_clears_total{name="users",reason="first_subscribe"} 1
invacache_clears_total{name="users",reason="id_backwards"} 0
invacache_clears_total{name="users",reason="malformed"} 0
invacache_clears_total{name="users",reason="no_continuity"} 14
invacache_clears_total{name="users",reason="no_cursor"} 0
invacache_clears_total{name="users",reason="peer_clear"} 2
invacache_clears_total{name="users",reason="replay_disabled"} 0
invacache_clears_total{name="users",reason="replay_error"} 0
invacache_clears_total{name="users",reason="unknown_version"} 0
invacache_clears_total{name="users",reason="unlogged_peer"} 0
invacache_clears_total{name="users",reason="gap_flood"} 0
# HELP invacache_entries Entries held now.
# TYPE invacache_entries gauge
invacache_entries{name="sessions"} 6
invacache_entries{name="users"} 42
# HELP invacache_evictions_total Entries removed to stay within the capacity.
# TYPE invacache_evictions_total counter
invacache_evictions_total{name="sessions"} 0
invacache_evictions_total{name="users"} 2
# HELP invacache_expirations_total Entries removed because their TTL ran out.
# TYPE invacache_expirations_total counter
invacache_expirations_total{name="sessions"} 5
invacache_expirations_total{name="users"} 4
# HELP invacache_gaps_total Possible losses of messages detected: link (re)established, sequence jump, unknown version, malformed message, liveness lapse.
# TYPE invacache_gaps_total counter
invacache_gaps_total{name="users"} 17
# HELP invacache_hits_total Lookups (Get, GetOrLoad) answered from the cache.
# TYPE invacache_hits_total counter
invacache_hits_total{name="sessions"} 1
invacache_hits_total{name="users"} 10
# HELP invacache_invalidation_clears_sent_total Whole-cache clears published.
# TYPE invacache_invalidation_clears_sent_total counter
invacache_invalidation_clears_sent_total{name="users"} 11
# HELP invacache_invalidation_keys_sent_total Keys in published invalidation messages (after coalescing duplicates).
# TYPE invacache_invalidation_keys_sent_total counter
invacache_invalidation_keys_sent_total{name="users"} 18
# HELP invacache_invalidation_messages_applied_total Peers' messages applied to the cache (envelopes and raw keys).
# TYPE invacache_invalidation_messages_applied_total counter
invacache_invalidation_messages_applied_total{name="users"} 24
# HELP invacache_invalidation_messages_ignored_own_total The node's own messages received back and ignored (self-suppression).
# TYPE invacache_invalidation_messages_ignored_own_total counter
invacache_invalidation_messages_ignored_own_total{name="users"} 16
# HELP invacache_invalidation_messages_malformed_total Envelopes that failed to decode (each is also a gap).
# TYPE invacache_invalidation_messages_malformed_total counter
invacache_invalidation_messages_malformed_total{name="users"} 14
# HELP invacache_invalidation_messages_raw_total Raw payloads received (a bare key, or empty = clear), as an operator's redis-cli PUBLISH sends.
# TYPE invacache_invalidation_messages_raw_total counter
invacache_invalidation_messages_raw_total{name="users"} 8
# HELP invacache_invalidation_messages_received_total Messages delivered by the subscription (own echoes included).
# TYPE invacache_invalidation_messages_received_total counter
invacache_invalidation_messages_received_total{name="users"} 30
# HELP invacache_invalidation_messages_sent_total Invalidation messages published (one may carry many keys).
# TYPE invacache_invalidation_messages_sent_total counter
invacache_invalidation_messages_sent_total{name="users"} 6
# HELP invacache_invalidation_outbox_overflows_total Times the keys waiting to be broadcast passed OutboxMaxKeys or OutboxMaxBytes and collapsed into one clear of every peer.
# TYPE invacache_invalidation_outbox_overflows_total counter
invacache_invalidation_outbox_overflows_total{name="users"} 23
# HELP invacache_invalidations_dropped_total Keys and clears still queued when Close gave up flushing (lost broadcasts).
# TYPE invacache_invalidations_dropped_total counter
invacache_invalidations_dropped_total{name="users"} 9
# HELP invacache_invalidations_requested_total Keys and clears (a clear counts 1) queued for broadcast by Set, Delete and Clear with invalidation.
# TYPE invacache_invalidations_requested_total counter
invacache_invalidations_requested_total{name="users"} 20
# HELP invacache_keys_replayed_total Keys invalidated from replayed log entries.
# TYPE invacache_keys_replayed_total counter
invacache_keys_replayed_total{name="users"} 22
# HELP invacache_link_up 1 while the subscription is established, else 0.
# TYPE invacache_link_up gauge
invacache_link_up{name="users"} 1
# HELP invacache_load_errors_total Loader calls that returned an error or panicked.
# TYPE invacache_load_errors_total counter
invacache_load_errors_total{name="sessions"} 0
invacache_load_errors_total{name="users"} 1
# HELP invacache_loads_total Loader calls made by GetOrLoad.
# TYPE invacache_loads_total counter
invacache_loads_total{name="sessions"} 3
invacache_loads_total{name="users"} 5
# HELP invacache_misses_total Lookups not answered from the cache, by reason: not_found (the cache held no live entry), not_serving (the node may not serve: its link is not proven alive within MaxStaleness, or a gap is being handled).
# TYPE invacache_misses_total counter
invacache_misses_total{name="sessions",reason="not_found"} 2
invacache_misses_total{name="sessions",reason="not_serving"} 0
invacache_misses_total{name="users",reason="not_found"} 4
invacache_misses_total{name="users",reason="not_serving"} 3
# HELP invacache_outage_reads_total Reads served past MaxStaleness since the last proof of life, under OutageStaleness while Redis was unreachable.
# TYPE invacache_outage_reads_total counter
invacache_outage_reads_total{name="users"} 25
# HELP invacache_outbox_depth Keys and clears (a clear counts 1) queued or being published now.
# TYPE invacache_outbox_depth gauge
invacache_outbox_depth{name="users"} 19
# HELP invacache_publish_failures_total Errors returned by the driver's Publish (the outbox retries).
# TYPE invacache_publish_failures_total counter
invacache_publish_failures_total{name="users"} 12
# HELP invacache_publish_latency_seconds Time from the request of a published batch's oldest broadcast to the driver accepting the batch (outbox wait, retries, publish round trip).
# TYPE invacache_publish_latency_seconds histogram
invacache_publish_latency_seconds_bucket{name="users",le="0.0001"} 0
invacache_publish_latency_seconds_bucket{name="users",le="0.00025"} 1
invacache_publish_latency_seconds_bucket{name="users",le="0.0005"} 2
invacache_publish_latency_seconds_bucket{name="users",le="0.001"} 2
invacache_publish_latency_seconds_bucket{name="users",le="0.0025"} 3
invacache_publish_latency_seconds_bucket{name="users",le="0.005"} 3
invacache_publish_latency_seconds_bucket{name="users",le="0.01"} 3
invacache_publish_latency_seconds_bucket{name="users",le="0.025"} 3
invacache_publish_latency_seconds_bucket{name="users",le="0.05"} 3
invacache_publish_latency_seconds_bucket{name="users",le="0.1"} 3
invacache_publish_latency_seconds_bucket{name="users",le="0.25"} 3
invacache_publish_latency_seconds_bucket{name="users",le="0.5"} 3
invacache_publish_latency_seconds_bucket{name="users",le="1"} 4
invacache_publish_latency_seconds_bucket{name="users",le="2.5"} 4
invacache_publish_latency_seconds_bucket{name="users",le="5"} 4
invacache_publish_latency_seconds_bucket{name="users",le="10"} 4
invacache_publish_latency_seconds_bucket{name="users",le="+Inf"} 5
invacache_publish_latency_seconds_sum{name="users"} 1.25
invacache_publish_latency_seconds_count{name="users"} 5
# HELP invacache_publish_retries_total Publish attempts after a failure.
# TYPE invacache_publish_retries_total counter
invacache_publish_retries_total{name="users"} 13
# HELP invacache_serving 1 while cached values may be served (link proven alive within MaxStaleness, or within OutageStaleness while Redis is unreachable; no gap pending), else 0.
# TYPE invacache_serving gauge
invacache_serving{name="users"} 0
`

// A scrape shows every metric under its Prometheus name with the value of
// its Stats field; link metrics only for the distributed cache.
func TestCollectorExposition(t *testing.T) {
	col, err := invaprom.NewCollector(
		invaprom.Cache{Name: "users", Stats: distributed},
		invaprom.Cache{Name: "sessions", Stats: local},
	)
	if err != nil {
		t.Fatalf("NewCollector: %v", err)
	}
	reg := prom.NewPedanticRegistry()
	if err := reg.Register(col); err != nil {
		t.Fatalf("Register: %v", err)
	}
	// Every name but the age, whose value is checked below.
	var names []string
	for _, line := range strings.Split(wantExposition, "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[1] == "TYPE" {
			names = append(names, f[2])
		}
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(wantExposition), names...); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 49 {
		t.Errorf("series gathered = %d, %v; want 49 (users: 8 cache + 33 link series (a histogram counts once); sessions: 8 cache series)", n, err)
	}
	age := testutil.ToFloat64(prom.CollectorFunc(func(ch chan<- prom.Metric) {
		only, _ := invaprom.NewCollector(invaprom.Cache{Name: "users", Stats: distributed})
		collectNamed(only, "invacache_link_alive_age_seconds", ch)
	}))
	if age != 1.5 {
		t.Errorf("invacache_link_alive_age_seconds = %v, want 1.5", age)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("promlint: %v %v", problems, err)
	}
}

// collectNamed forwards c's metrics whose descriptor names name.
func collectNamed(c prom.Collector, name string, out chan<- prom.Metric) {
	ch := make(chan prom.Metric)
	go func() { c.Collect(ch); close(ch) }()
	for m := range ch {
		if strings.Contains(m.Desc().String(), `fqName: "`+name+`"`) {
			out <- m
		}
	}
}

// A link never proven alive reports an infinite age, not 0 ("just now").
func TestLinkAgeNeverAlive(t *testing.T) {
	never := func() invacache.Stats { return invacache.Stats{Distributed: true} }
	col, err := invaprom.NewCollector(invaprom.Cache{Name: "c", Stats: never})
	if err != nil {
		t.Fatalf("NewCollector: %v", err)
	}
	age := testutil.ToFloat64(prom.CollectorFunc(func(ch chan<- prom.Metric) {
		collectNamed(col, "invacache_link_alive_age_seconds", ch)
	}))
	if !math.IsInf(age, 1) {
		t.Errorf("age of a link never alive = %v, want +Inf", age)
	}
}

func TestCollectorRejectsBadCaches(t *testing.T) {
	ok := invaprom.Cache{Name: "a", Stats: local}
	tests := []struct {
		name    string
		caches  []invaprom.Cache
		wantMsg string
	}{
		{"empty name", []invaprom.Cache{{Stats: local}}, "caches[0].Name: empty"},
		{"nil stats", []invaprom.Cache{ok, {Name: "b"}}, `caches[1] ("b").Stats: nil`},
		{"duplicate", []invaprom.Cache{ok, ok}, `caches[1].Name: "a" is already collected`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := invaprom.NewCollector(tt.caches...)
			if !errors.Is(err, invaprom.ErrInvalidCache) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("NewCollector error = %v, want ErrInvalidCache naming %q", err, tt.wantMsg)
			}
		})
	}
	col, err := invaprom.NewCollector(ok)
	if err != nil {
		t.Fatalf("NewCollector: %v", err)
	}
	if err := col.Add(ok); !errors.Is(err, invaprom.ErrInvalidCache) {
		t.Errorf("Add of a name already collected = %v, want ErrInvalidCache", err)
	}
	if !col.Remove("a") || col.Remove("a") {
		t.Errorf("Remove(a) twice: want true then false")
	}
	if err := col.Add(ok); err != nil {
		t.Errorf("Add after Remove: %v", err)
	}
}
