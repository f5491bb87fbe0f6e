// Package otel exports the counters of one or many InvaCache-Go caches as
// OpenTelemetry metrics (go.opentelemetry.io/otel/metric).
//
// Register creates asynchronous instruments whose callback reads each
// cache's Stats once per collection; nothing runs between collections.
// Every measurement carries a "name" attribute naming the cache:
//
//	users, _ := invacache.NewCache[User](cfg)
//	reg, err := otel.Register(meterProvider, otel.Cache{Name: "users", Stats: users.Stats})
//	if err != nil { ... }
//	defer reg.Unregister()
//
// Instruments are named invacache.<metric> ("invacache.hits",
// "invacache.link_alive_age" in seconds); an OpenTelemetry Prometheus
// exporter turns them into the names that the metrics/prometheus module
// exports (invacache_hits_total, invacache_link_alive_age_seconds), so one
// dashboard serves both. One exception: OpenTelemetry has no asynchronous
// histogram, so the publish latency histogram of the Prometheus module is
// observed as two counters, invacache.publish_latency.count and
// invacache.publish_latency.sum (seconds): their ratio is the mean. Counters are cumulative over a cache's life.
// Instruments of the invalidation link are observed only for caches
// attached to a bus.
package otel

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/internal/metricset"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// ScopeName is the instrumentation scope of the Meter that Register uses.
const ScopeName = "github.com/halilbulentorhon/invacache-go/metrics/otel"

// ErrInvalidCache is wrapped by the errors Register returns for a nil
// MeterProvider, or a Cache without a name or Stats, or with a duplicate name.
var ErrInvalidCache = errors.New("otel: invalid cache")

// Cache names one cache for Register.
type Cache struct {
	// Name is the value of the "name" attribute of the cache's
	// measurements; unique within one Register call.
	Name string
	// Stats returns the cache's counters: the Stats method of any
	// invacache.Cache[V] (users.Stats).
	Stats func() invacache.Stats
}

// Registration is the result of Register.
type Registration struct {
	reg metric.Registration
}

// Unregister stops observing the caches (call it when they close). The
// instruments stay with the MeterProvider but report nothing more.
func (r *Registration) Unregister() error { return r.reg.Unregister() }

// Register observes caches through a Meter of mp (scope ScopeName). It
// returns an error wrapping ErrInvalidCache for a nil mp, an empty name, a
// nil Stats or a duplicate name, and the Meter's error if an instrument
// cannot be created.
func Register(mp metric.MeterProvider, caches ...Cache) (*Registration, error) {
	if mp == nil {
		return nil, fmt.Errorf("otel: MeterProvider: nil: %w", ErrInvalidCache)
	}
	seen := map[string]bool{}
	for i, k := range caches {
		switch {
		case k.Name == "":
			return nil, fmt.Errorf("otel: caches[%d].Name: empty: %w", i, ErrInvalidCache)
		case k.Stats == nil:
			return nil, fmt.Errorf("otel: caches[%d] (%q).Stats: nil: %w", i, k.Name, ErrInvalidCache)
		case seen[k.Name]:
			return nil, fmt.Errorf("otel: caches[%d].Name: %q appears twice: %w", i, k.Name, ErrInvalidCache)
		}
		seen[k.Name] = true
	}
	caches = append([]Cache(nil), caches...)
	meter := mp.Meter(ScopeName)
	// insts[i] are the instruments of metricset.All[i]: one, or for a
	// histogram its count and sum (OpenTelemetry has no asynchronous
	// histogram).
	insts := make([][]metric.Observable, len(metricset.All))
	var all []metric.Observable
	for i, m := range metricset.All {
		desc, unit := metric.WithDescription(m.Help), metric.WithUnit(m.OTelUnit())
		var err error
		switch m.Kind {
		case metricset.Counter:
			var c metric.Int64ObservableCounter
			c, err = meter.Int64ObservableCounter(m.OTelName(), desc, unit)
			insts[i] = []metric.Observable{c}
		case metricset.Gauge:
			var g metric.Float64ObservableGauge
			g, err = meter.Float64ObservableGauge(m.OTelName(), desc, unit)
			insts[i] = []metric.Observable{g}
		case metricset.Histogram:
			var c metric.Int64ObservableCounter
			var sum metric.Float64ObservableCounter
			c, err = meter.Int64ObservableCounter(m.OTelName()+".count", metric.WithDescription("Count of: "+m.Help), metric.WithUnit("1"))
			if err == nil {
				sum, err = meter.Float64ObservableCounter(m.OTelName()+".sum", metric.WithDescription("Sum of: "+m.Help), unit)
			}
			insts[i] = []metric.Observable{c, sum}
		}
		if err != nil {
			return nil, fmt.Errorf("otel: instrument %s: %w", m.OTelName(), err)
		}
		all = append(all, insts[i]...)
	}
	reg, err := meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for _, k := range caches {
			st := k.Stats()
			name := attribute.String(metricset.NameLabel, k.Name)
			for i, m := range metricset.All {
				if !m.Exported(&st) {
					continue
				}
				if m.Kind == metricset.Histogram {
					count, sum, _ := m.Hist(&st)
					opt := metric.WithAttributes(name)
					o.ObserveInt64(insts[i][0].(metric.Int64ObservableCounter), int64(min(count, math.MaxInt64)), opt)
					o.ObserveFloat64(insts[i][1].(metric.Float64ObservableCounter), sum, opt)
					continue
				}
				m.Read(&st, func(label string, v float64) {
					attrs := []attribute.KeyValue{name}
					if m.Label != "" {
						attrs = append(attrs, attribute.String(m.Label, label))
					}
					opt := metric.WithAttributes(attrs...)
					switch inst := insts[i][0].(type) {
					case metric.Int64ObservableCounter:
						o.ObserveInt64(inst, int64(min(v, math.MaxInt64)), opt)
					case metric.Float64ObservableGauge:
						o.ObserveFloat64(inst, v, opt)
					}
				})
			}
		}
		return nil
	}, all...)
	if err != nil {
		return nil, fmt.Errorf("otel: register callback: %w", err)
	}
	return &Registration{reg: reg}, nil
}
