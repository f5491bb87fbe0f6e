package main

import (
	"encoding/json"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape fetches url and parses the Prometheus text format.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	return fams
}

// value returns the series of fam with the given label values (name=...,
// reason=...), or NaN.
func value(fams map[string]*dto.MetricFamily, fam string, labels ...string) float64 {
	f := fams[fam]
	if f == nil {
		return math.NaN()
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		}
	}
	return math.NaN()
}

// The done-when of issue 14: a Prometheus scrape of the demo shows the
// invacache_ series of every node with sane values, counters only grow.
func TestDemoServesMetrics(t *testing.T) {
	leakcheck.Check(t)
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"demo", "--duration", "5s", "--read-rate", "500", "--write-rate", "50", "--metrics-addr", "127.0.0.1:0"}, &out, &errOut)
	}()
	urlRE := regexp.MustCompile(`metrics: (http://\S+/metrics)`)
	waitFor(t, "the demo to print its metrics URL", 15*time.Second, func() bool { return urlRE.MatchString(out.String()) })
	url := urlRE.FindStringSubmatch(out.String())[1]

	var first map[string]*dto.MetricFamily
	waitFor(t, "every node to count hits, loads and applied invalidations", 10*time.Second, func() bool {
		first = scrape(t, url)
		for _, n := range []string{"node0", "node1", "node2"} {
			for _, fam := range []string{"invacache_hits_total", "invacache_loads_total", "invacache_invalidation_messages_applied_total"} {
				if !(value(first, fam, "name", n) > 0) {
					return false
				}
			}
		}
		return true
	})
	for _, n := range []string{"node0", "node1", "node2"} {
		for _, c := range []struct {
			fam    string
			labels []string
			ok     func(float64) bool
			want   string
		}{
			{"invacache_link_up", nil, func(v float64) bool { return v == 1 }, "1"},
			{"invacache_serving", nil, func(v float64) bool { return v == 1 }, "1"},
			{"invacache_entries", nil, func(v float64) bool { return v > 0 && v <= 1000 }, "in (0, 1000] (the demo's keys)"},
			{"invacache_misses_total", []string{"reason", "not_found"}, func(v float64) bool { return v > 0 }, "> 0"},
			{"invacache_misses_total", []string{"reason", "not_serving"}, func(v float64) bool { return v == 0 }, "0 (no fault)"},
			{"invacache_load_errors_total", nil, func(v float64) bool { return v == 0 }, "0"},
			{"invacache_clears_total", []string{"reason", "first_subscribe"}, func(v float64) bool { return v <= 1 }, "at most 1"},
			{"invacache_outbox_depth", nil, func(v float64) bool { return v >= 0 }, ">= 0"},
			{"invacache_publish_failures_total", nil, func(v float64) bool { return v == 0 }, "0"},
			{"invacache_link_alive_age_seconds", nil, func(v float64) bool { return v >= 0 && v < 2 }, "in [0, 2s) (MaxStaleness)"},
		} {
			if v := value(first, c.fam, append([]string{"name", n}, c.labels...)...); !c.ok(v) {
				t.Errorf("%s{name=%q %v} = %v, want %s", c.fam, n, c.labels, v, c.want)
			}
		}
	}
	// Writers run on node0 and node1 (two writers over three nodes).
	if v := value(first, "invacache_invalidations_requested_total", "name", "node0"); !(v > 0) {
		t.Errorf("invacache_invalidations_requested_total{name=node0} = %v, want > 0", v)
	}
	if v := value(first, "invacache_invalidations_requested_total", "name", "node2"); v != 0 {
		t.Errorf("invacache_invalidations_requested_total{name=node2} = %v, want 0 (no writer)", v)
	}
	waitFor(t, "counters to move between scrapes", 5*time.Second, func() bool {
		return value(scrape(t, url), "invacache_hits_total", "name", "node0") > value(first, "invacache_hits_total", "name", "node0")
	})
	second := scrape(t, url)
	for name, fam := range second {
		if fam.GetType() != dto.MetricType_COUNTER {
			continue
		}
		for _, m := range fam.GetMetric() {
			var lv []string
			for _, l := range m.GetLabel() {
				lv = append(lv, l.GetName(), l.GetValue())
			}
			if before := value(first, name, lv...); m.GetCounter().GetValue() < before {
				t.Errorf("%s%v went down: %v -> %v", name, lv, before, m.GetCounter().GetValue())
			}
		}
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("demo: exit %d, stderr %q\n%s", code, errOut.String(), out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("demo did not end")
	}
	if _, err := http.Get(url); err == nil {
		t.Errorf("metrics still served after the demo ended")
	}
}

func TestDemoMetricsAddrErrors(t *testing.T) {
	leakcheck.Check(t)
	oneErrorLine(t, []string{"demo", "--metrics-addr", "nonsense"}, 2, `--metrics-addr: "nonsense" is not HOST:PORT`)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := l.Addr().String()
	oneErrorLine(t, []string{"demo", "--duration", "1s", "--metrics-addr", busy}, 1, "--metrics-addr: listen tcp "+busy)
}

func TestVersion(t *testing.T) {
	leakcheck.Check(t)
	for _, arg := range []string{"--version", "version"} {
		out, errOut, code := runCLI(t, arg)
		if code != 0 || errOut != "" || !strings.HasPrefix(out, "invacache ") || !strings.Contains(out, runtime.Version()) || strings.Count(out, "\n") != 1 {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want one line naming the version and %s", arg, code, out, errOut, runtime.Version())
		}
	}
}

// --help lists flags as the README writes them: --flag, never -flag.
func TestHelpUsesDoubleDash(t *testing.T) {
	leakcheck.Check(t)
	single := regexp.MustCompile(`(?m)^\s+-[a-z]`)
	for _, c := range commands() {
		out, _, code := runCLI(t, c.name, "--help")
		if code != 0 || single.MatchString(out) || !strings.Contains(out, "  --") {
			t.Errorf("%s --help: exit %d, want every flag as --flag:\n%s", c.name, code, out)
		}
	}
}

func TestMonitorJSON(t *testing.T) {
	leakcheck.Check(t)
	ch := channelFor(t)
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"monitor", "--json", "--redis", srv.Addr(), "--channel", ch, "--count", "2", "--duration", "20s"}, &out, &errOut)
	}()
	waitFor(t, "the monitor to subscribe", 5*time.Second, func() bool { return strings.Contains(out.String(), `"event":"subscribed"`) })
	if _, errText, code := runCLI(t, "invalidate", "--redis", srv.Addr(), "--channel", ch, "a", "b c"); code != 0 {
		t.Fatalf("invalidate: %s", errText)
	}
	if _, errText, code := runCLI(t, "invalidate", "--raw", "--redis", srv.Addr(), "--channel", ch, "user:1"); code != 0 {
		t.Fatalf("invalidate --raw: %s", errText)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("monitor: exit %d, stderr %q", code, errOut.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("monitor did not stop after --count messages")
	}
	var events []map[string]any
	for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("line %q is not JSON: %v", line, err)
		}
		events = append(events, ev)
	}
	var kinds []string
	for _, ev := range events {
		kinds = append(kinds, ev["event"].(string))
	}
	if got, want := strings.Join(kinds, ","), "subscribed,message,raw_key,summary"; got != want {
		t.Fatalf("events %s, want %s:\n%s", got, want, out.String())
	}
	msg, _ := json.Marshal(events[1]["ops"])
	if string(msg) != `[{"keys":["a","b c"],"op":"delete"}]` || events[1]["seq"] != 1.0 {
		t.Errorf("message event %v, want seq 1 and ops delete [a, b c]", events[1])
	}
	if events[2]["key"] != "user:1" {
		t.Errorf("raw_key event %v, want key user:1", events[2])
	}
	if events[3]["messages"] != 2.0 || events[3]["keys"] != 3.0 {
		t.Errorf("summary %v, want 2 messages, 3 keys", events[3])
	}
}

func TestBenchJSONAndPlotCheckedFirst(t *testing.T) {
	leakcheck.Check(t)
	// A bad --plot path fails before anything is measured, even before
	// Redis is dialled.
	bad := filepath.Join(t.TempDir(), "no-such-dir", "lat.svg")
	oneErrorLine(t, []string{"bench", "--redis", closedAddr(t), "--plot", bad}, 1, "--plot: open "+bad)

	plot := filepath.Join(t.TempDir(), "lat.svg")
	if err := os.WriteFile(plot, []byte(strings.Repeat("old content ", 10000)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCLI(t, "bench", "--json", "--quiet", "--redis", srv.Addr(), "--channel", channelFor(t),
		"--samples", "30", "--warmup", "5", "--keys", "1000", "--raw-keys", "200", "--plot", plot)
	if code != 0 {
		t.Fatalf("bench --json: exit %d, stderr %q\n%s", code, errOut, out)
	}
	if strings.Count(out, "\n") != 1 {
		t.Fatalf("bench --json printed %d lines, want 1:\n%s", strings.Count(out, "\n"), out)
	}
	var r benchResultJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("bench --json: %v\n%s", err, out)
	}
	if r.Event != "bench" || r.Cache.Samples+r.Lost != 30 || r.Raw.Samples != 30 || r.Cache.P50 <= 0 || r.Raw.P99 < r.Raw.P50 ||
		r.GroupCommitKeys != 1000 || r.GroupCommitKeysPerSec <= 0 || r.PerKeyKeysPerSec <= 0 || r.Plot != plot {
		t.Errorf("bench --json result not sane: %+v", r)
	}
	svg, err := os.ReadFile(plot)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(svg), "<svg") || strings.Contains(string(svg), "old content") {
		t.Errorf("plot was not replaced by the histogram: %.200s", svg)
	}
}

// Every usage error names the flag (in the --flag form) or the config key.
func TestErrorsNameTheFlag(t *testing.T) {
	leakcheck.Check(t)
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(cfg, []byte("invalidation:\n  maxStaleness: 2s\n  redis:\n    adress: localhost:6379\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"demo", "--readers", "-1"}, 2, "--readers: -1 is negative"},
		{[]string{"demo", "--write-rate", "0"}, 2, "--write-rate: 0"},
		{[]string{"demo", "--interval", "0s"}, 2, "--interval: 0s is not positive"},
		{[]string{"demo", "--slack", "-1s"}, 2, "--slack: -1s is negative"},
		{[]string{"demo", "--nodes=x"}, 2, `invalid value "x" for flag --nodes`},
		{[]string{"bench", "--samples", "0"}, 2, "--samples: 0 is not positive"},
		{[]string{"bench", "--warmup", "-1"}, 2, "--warmup: -1 is negative"},
		{[]string{"monitor", "--max-keys", "0"}, 2, "--max-keys: 0"},
		{[]string{"monitor", "--dial-timeout", "0s"}, 2, "--dial-timeout: 0s is not positive"},
		{[]string{"invalidate", "--db", "-1", "k"}, 2, "--db: -1 is negative"},
		{[]string{"invalidate", "--config", cfg, "k"}, 1, "invalidation.redis.adress"},
	}
	for _, tc := range tests {
		oneErrorLine(t, tc.args, tc.code, tc.want)
	}
}

func TestSnake(t *testing.T) {
	for in, want := range map[string]string{
		"HeapInUse": "heap_in_use", "MaxStalenessObserved": "max_staleness_observed", "P99": "p99",
		"AOF": "aof", "GoroutinesPerCycle": "goroutines_per_cycle", "HitRatio": "hit_ratio",
		"kill": "kill", "first_subscribe": "first_subscribe", "ClearsOnGap": "clears_on_gap", "FaultIDs": "fault_ids",
	} {
		if got := snake(in); got != want {
			t.Errorf("snake(%q) = %q, want %q", in, got, want)
		}
	}
}

// chaos --json prints the report as one JSON object whose keys are
// snake_case.
func TestChaosJSON(t *testing.T) {
	leakcheck.Check(t)
	out, errOut, code := runCLI(t, "chaos", "--json", "--duration", "6s", "--baseline=false", "--nodes", "2", "--faults", "cut", "--read-rate", "200", "--write-rate", "10")
	if code != 0 {
		t.Fatalf("chaos --json: exit %d, stderr %q\n%s", code, errOut, out)
	}
	if strings.Count(out, "\n") != 1 {
		t.Fatalf("chaos --json printed %d lines, want 1:\n%s", strings.Count(out, "\n"), out)
	}
	var rep map[string]any
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("chaos --json: %v\n%s", err, out)
	}
	if rep["event"] != "chaos" || !(rep["reads"].(float64) > 0) || rep["violations"] != 0.0 {
		t.Errorf("chaos --json: event %v, reads %v, violations %v; want chaos, > 0, 0\n%s", rep["event"], rep["reads"], rep["violations"], out)
	}
	for k := range rep {
		if k != strings.ToLower(k) {
			t.Errorf("key %q is not snake_case", k)
		}
	}
}

func TestVersionLine(t *testing.T) {
	lib := &debug.Module{Path: libraryPath, Version: "v1.2.0"}
	tests := []struct {
		name string
		bi   debug.BuildInfo
		want string
	}{
		{"release", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.0"}, Deps: []*debug.Module{lib}},
			"invacache v1.2.0, library v1.2.0, go1.26.8"},
		{"checkout", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"},
			Deps:     []*debug.Module{{Path: libraryPath, Version: "v0.0.0", Replace: &debug.Module{Path: "../.."}}},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "true"}}},
			"invacache (devel), library v0.0.0 => ../.., go1.26.8, revision 0123456789ab (modified)"},
		{"no version", debug.BuildInfo{GoVersion: "go1.26.8"}, "invacache (devel), go1.26.8"},
	}
	for _, tc := range tests {
		if got := versionLine(&tc.bi); got != tc.want {
			t.Errorf("%s: versionLine = %q, want %q", tc.name, got, tc.want)
		}
	}
}
