package otel_test

import (
	"context"
	"errors"
	"math"
	"sort"
	"strings"
	"testing"

	"github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/internal/metricset"
	invaotel "github.com/halilbulentorhon/invacache-go/metrics/otel"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

func distributed() invacache.Stats { d, _ := metricset.Fixture(); return d }

func local() invacache.Stats { _, l := metricset.Fixture(); return l }

// collect reads every point into "instrument{attr=value,...}" -> value, and
// instrument -> (unit, monotonic counter).
func collect(t *testing.T, r *sdkmetric.ManualReader) (map[string]float64, map[string]string) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("Collect: %v", err)
	}
	points := map[string]float64{}
	kinds := map[string]string{}
	key := func(name string, set attribute.Set) string {
		var kv []string
		for _, a := range set.ToSlice() {
			kv = append(kv, string(a.Key)+"="+a.Value.Emit())
		}
		sort.Strings(kv)
		return name + "{" + strings.Join(kv, ",") + "}"
	}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != invaotel.ScopeName {
			t.Errorf("scope = %q, want %q", sm.Scope.Name, invaotel.ScopeName)
		}
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				if !d.IsMonotonic || d.Temporality != metricdata.CumulativeTemporality {
					t.Errorf("%s: monotonic=%v temporality=%v, want a cumulative monotonic sum", m.Name, d.IsMonotonic, d.Temporality)
				}
				kinds[m.Name] = "counter " + m.Unit
				for _, p := range d.DataPoints {
					points[key(m.Name, p.Attributes)] = float64(p.Value)
				}
			case metricdata.Sum[float64]:
				if !d.IsMonotonic || d.Temporality != metricdata.CumulativeTemporality {
					t.Errorf("%s: monotonic=%v temporality=%v, want a cumulative monotonic sum", m.Name, d.IsMonotonic, d.Temporality)
				}
				kinds[m.Name] = "counter " + m.Unit
				for _, p := range d.DataPoints {
					points[key(m.Name, p.Attributes)] = p.Value
				}
			case metricdata.Gauge[float64]:
				kinds[m.Name] = "gauge " + m.Unit
				for _, p := range d.DataPoints {
					points[key(m.Name, p.Attributes)] = p.Value
				}
			default:
				t.Errorf("%s: unexpected data %T", m.Name, m.Data)
			}
		}
	}
	return points, kinds
}

// An in-memory reader sees every instrument with the value of its Stats
// field; link instruments only for the distributed cache.
func TestRegisterManualReader(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	reg, err := invaotel.Register(mp, invaotel.Cache{Name: "users", Stats: distributed}, invaotel.Cache{Name: "sessions", Stats: local})
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	points, kinds := collect(t, reader)
	want := map[string]float64{
		"invacache.hits{name=users}":                              10,
		"invacache.hits{name=sessions}":                           1,
		"invacache.misses{name=users,reason=not_found}":           4,
		"invacache.misses{name=users,reason=not_serving}":         3,
		"invacache.misses{name=sessions,reason=not_found}":        2,
		"invacache.misses{name=sessions,reason=not_serving}":      0,
		"invacache.loads{name=users}":                             5,
		"invacache.loads{name=sessions}":                          3,
		"invacache.load_errors{name=users}":                       1,
		"invacache.load_errors{name=sessions}":                    0,
		"invacache.evictions{name=users}":                         2,
		"invacache.evictions{name=sessions}":                      0,
		"invacache.expirations{name=users}":                       4,
		"invacache.expirations{name=sessions}":                    5,
		"invacache.entries{name=users}":                           42,
		"invacache.entries{name=sessions}":                        6,
		"invacache.invalidations_requested{name=users}":           20,
		"invacache.invalidation_keys_sent{name=users}":            18,
		"invacache.invalidation_clears_sent{name=users}":          11,
		"invacache.invalidation_messages_sent{name=users}":        6,
		"invacache.invalidations_dropped{name=users}":             9,
		"invacache.invalidation_outbox_overflows{name=users}":     23,
		"invacache.invalidation_messages_received{name=users}":    30,
		"invacache.invalidation_messages_applied{name=users}":     24,
		"invacache.invalidation_messages_ignored_own{name=users}": 16,
		"invacache.invalidation_messages_raw{name=users}":         8,
		"invacache.invalidation_messages_malformed{name=users}":   14,
		"invacache.publish_failures{name=users}":                  12,
		"invacache.publish_retries{name=users}":                   13,
		"invacache.outbox_depth{name=users}":                      19,
		"invacache.gaps{name=users}":                              17,
		"invacache.clears{name=users,reason=first_subscribe}":     1,
		"invacache.clears{name=users,reason=replay_disabled}":     0,
		"invacache.clears{name=users,reason=no_cursor}":           0,
		"invacache.clears{name=users,reason=no_continuity}":       14,
		"invacache.clears{name=users,reason=replay_error}":        0,
		"invacache.clears{name=users,reason=malformed}":           0,
		"invacache.clears{name=users,reason=unknown_version}":     0,
		"invacache.clears{name=users,reason=id_backwards}":        0,
		"invacache.clears{name=users,reason=unlogged_peer}":       0,
		"invacache.clears{name=users,reason=gap_flood}":           0,
		"invacache.clears{name=users,reason=peer_clear}":          2,
		"invacache.publish_latency.count{name=users}":             5,
		"invacache.publish_latency.sum{name=users}":               1.25,
		"invacache.catch_ups{name=users}":                         21,
		"invacache.keys_replayed{name=users}":                     22,
		"invacache.outage_reads{name=users}":                      25,
		"invacache.link_up{name=users}":                           1,
		"invacache.serving{name=users}":                           0,
		"invacache.link_alive_age{name=users}":                    1.5,
	}
	for k, v := range want {
		if got, ok := points[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	for k := range points {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected point %s = %v", k, points[k])
		}
	}
	for name, want := range map[string]string{
		"invacache.hits":                "counter 1",
		"invacache.entries":             "gauge 1",
		"invacache.link_alive_age":      "gauge s",
		"invacache.publish_latency.sum": "counter s",
	} {
		if kinds[name] != want {
			t.Errorf("%s: kind and unit %q, want %q", name, kinds[name], want)
		}
	}

	if err := reg.Unregister(); err != nil {
		t.Fatalf("Unregister: %v", err)
	}
	if points, _ := collect(t, reader); len(points) != 0 {
		t.Errorf("after Unregister: %d points, want 0", len(points))
	}
}

// A link never proven alive reports an infinite age, not 0 ("just now").
func TestLinkAgeNeverAlive(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	never := func() invacache.Stats { return invacache.Stats{Distributed: true} }
	if _, err := invaotel.Register(mp, invaotel.Cache{Name: "c", Stats: never}); err != nil {
		t.Fatalf("Register: %v", err)
	}
	points, _ := collect(t, reader)
	if age := points["invacache.link_alive_age{name=c}"]; !math.IsInf(age, 1) {
		t.Errorf("age of a link never alive = %v, want +Inf", age)
	}
}

func TestRegisterRejectsBadInput(t *testing.T) {
	mp := sdkmetric.NewMeterProvider()
	defer mp.Shutdown(context.Background())
	ok := invaotel.Cache{Name: "a", Stats: local}
	tests := []struct {
		name    string
		nilMP   bool
		caches  []invaotel.Cache
		wantMsg string
	}{
		{"nil provider", true, []invaotel.Cache{ok}, "MeterProvider: nil"},
		{"empty name", false, []invaotel.Cache{{Stats: local}}, "caches[0].Name: empty"},
		{"nil stats", false, []invaotel.Cache{ok, {Name: "b"}}, `caches[1] ("b").Stats: nil`},
		{"duplicate", false, []invaotel.Cache{ok, ok}, `caches[1].Name: "a" appears twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.nilMP {
				_, err = invaotel.Register(nil, tt.caches...)
			} else {
				_, err = invaotel.Register(mp, tt.caches...)
			}
			if !errors.Is(err, invaotel.ErrInvalidCache) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Register error = %v, want ErrInvalidCache naming %q", err, tt.wantMsg)
			}
		})
	}
}
