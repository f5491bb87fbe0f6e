package prometheus_test

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	invaprom "github.com/halilbulentorhon/invacache-go/metrics/prometheus"
	prom "github.com/prometheus/client_golang/prometheus"
)

// Every metric the Grafana dashboard (metrics/grafana/invacache.json)
// queries is one the collector exports, and every metric is on it or
// knowingly left off.
func TestDashboardQueriesExportedMetrics(t *testing.T) {
	data, err := os.ReadFile("../grafana/invacache.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	col, err := invaprom.NewCollector(invaprom.Cache{Name: "users", Stats: distributed})
	if err != nil {
		t.Fatal(err)
	}
	reg := prom.NewPedanticRegistry()
	reg.MustRegister(col)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, f := range fams {
		exported[f.GetName()] = true
		if f.GetType().String() == "HISTOGRAM" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				exported[f.GetName()+s] = true
			}
		}
	}
	used := map[string]bool{}
	name := regexp.MustCompile(`invacache_[a-z_]+`)
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, n := range name.FindAllString(tg.Expr, -1) {
				used[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")] = true
				if !exported[n] {
					t.Errorf("panel %q queries %s, which the collector does not export", p.Title, n)
				}
			}
		}
	}
	offDashboard := map[string]bool{ // counters for debugging, not for a first look
		"invacache_invalidation_clears_sent_total": true, "invacache_invalidations_dropped_total": true,
		"invacache_invalidation_outbox_overflows_total":  true,
		"invacache_invalidation_messages_received_total": true, "invacache_invalidation_messages_ignored_own_total": true,
		"invacache_invalidation_messages_raw_total": true, "invacache_invalidation_messages_malformed_total": true,
		"invacache_evictions_total": true, "invacache_expirations_total": true,
	}
	for _, f := range fams {
		if !used[f.GetName()] && !offDashboard[f.GetName()] {
			t.Errorf("%s is on no dashboard panel", f.GetName())
		}
	}
}
