// Package prometheus exports the counters of one or many InvaCache-Go caches
// as Prometheus metrics (github.com/prometheus/client_golang).
//
// A Collector reads each cache's Stats at scrape time; nothing is counted
// twice and nothing runs between scrapes. Every series carries a "name"
// label naming the cache:
//
//	users, _ := invacache.NewCache[User](cfg)
//	col, err := prometheus.NewCollector(prometheus.Cache{Name: "users", Stats: users.Stats})
//	if err != nil { ... }
//	promclient.MustRegister(col) // github.com/prometheus/client_golang/prometheus
//
// Counters (names ending in _total) grow over a cache's life. Metrics of the
// invalidation link (invacache_invalidation_*, invacache_publish_*,
// invacache_outbox_depth, invacache_gaps_total, invacache_clears_total,
// invacache_link_up, invacache_serving, invacache_link_alive_age_seconds)
// are exported only for caches attached to a bus. Each series' HELP text says
// what it counts; metrics/README.md in the repository lists them all, with the
// Grafana dashboard that uses them (metrics/grafana/invacache.json).
package prometheus

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/internal/metricset"
	prom "github.com/prometheus/client_golang/prometheus"
)

// ErrInvalidCache is wrapped by the errors NewCollector and Add return for a
// Cache without a name or Stats, or with a name already collected.
var ErrInvalidCache = errors.New("prometheus: invalid cache")

// Cache names one cache for a Collector.
type Cache struct {
	// Name is the value of the "name" label of the cache's series; unique
	// within a Collector.
	Name string
	// Stats returns the cache's counters: the Stats method of any
	// invacache.Cache[V] (users.Stats).
	Stats func() invacache.Stats
}

// Collector is a prometheus.Collector over a set of caches. Safe for
// concurrent use.
type Collector struct {
	descs []*prom.Desc // index-aligned with metricset.All

	mu     sync.Mutex
	caches []Cache // guarded by mu
}

// NewCollector returns a Collector of caches (more may be added with Add).
// It returns an error wrapping ErrInvalidCache for an empty name, a nil
// Stats or a duplicate name.
func NewCollector(caches ...Cache) (*Collector, error) {
	c := &Collector{descs: make([]*prom.Desc, len(metricset.All))}
	for i, m := range metricset.All {
		labels := []string{metricset.NameLabel}
		if m.Label != "" {
			labels = append(labels, m.Label)
		}
		c.descs[i] = prom.NewDesc(m.PromName(), m.Help, labels, nil)
	}
	if err := c.Add(caches...); err != nil {
		return nil, err
	}
	return c, nil
}

// Add collects more caches, from the next scrape on. It adds none of them
// and returns an error wrapping ErrInvalidCache for an empty name, a nil
// Stats or a name already collected.
func (c *Collector) Add(caches ...Cache) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := map[string]bool{}
	for _, k := range c.caches {
		seen[k.Name] = true
	}
	for i, k := range caches {
		switch {
		case k.Name == "":
			return fmt.Errorf("prometheus: caches[%d].Name: empty: %w", i, ErrInvalidCache)
		case k.Stats == nil:
			return fmt.Errorf("prometheus: caches[%d] (%q).Stats: nil: %w", i, k.Name, ErrInvalidCache)
		case seen[k.Name]:
			return fmt.Errorf("prometheus: caches[%d].Name: %q is already collected: %w", i, k.Name, ErrInvalidCache)
		}
		seen[k.Name] = true
	}
	c.caches = append(c.caches, caches...)
	return nil
}

// Remove stops collecting the cache named name (call it before or after
// closing that cache) and reports whether it was collected.
func (c *Collector) Remove(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := slices.IndexFunc(c.caches, func(k Cache) bool { return k.Name == name })
	if i < 0 {
		return false
	}
	c.caches = slices.Delete(c.caches, i, i+1)
	return true
}

// Describe sends the descriptors of every metric.
func (c *Collector) Describe(ch chan<- *prom.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect reads each cache's Stats once and sends its series.
func (c *Collector) Collect(ch chan<- prom.Metric) {
	c.mu.Lock()
	caches := slices.Clone(c.caches)
	c.mu.Unlock()
	for _, k := range caches {
		st := k.Stats()
		for i, m := range metricset.All {
			if !m.Exported(&st) {
				continue
			}
			if m.Kind == metricset.Histogram {
				count, sum, buckets := m.Hist(&st)
				ch <- prom.MustNewConstHistogram(c.descs[i], count, sum, buckets, k.Name)
				continue
			}
			vt := prom.GaugeValue
			if m.Kind == metricset.Counter {
				vt = prom.CounterValue
			}
			m.Read(&st, func(label string, v float64) {
				lv := []string{k.Name}
				if m.Label != "" {
					lv = append(lv, label)
				}
				ch <- prom.MustNewConstMetric(c.descs[i], vt, v, lv...)
			})
		}
	}
}
