package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
)

// The short chaos run of the test suite: every fault kind several times,
// no read beyond the bound, every fault verified and recovered from, and
// the goroutines back to the baseline after Close.
func TestChaosShortRun(t *testing.T) {
	if testing.Short() {
		t.Skip("30s chaos run; skipped with -short")
	}
	leakcheck.Check(t)
	out := runChaos(t, []string{"kill", "cut", "blackhole", "slow", "partition"}, 2, "--duration", "30s", "--baseline=false",
		"--faults", "kill,cut,blackhole,slow,partition") // the log kinds: TestChaosLogFaults
	faults := regexp.MustCompile(`(?m)^  faults: .*$`).FindString(out)
	if m := regexp.MustCompile(`dropped by Redis (\d+)`).FindStringSubmatch(faults); m == nil || m[1] == "0" {
		t.Errorf("no slow-subscriber fault verified that Redis dropped the subscriber: %q", faults)
	}
	g := regexp.MustCompile(`goroutines:   baseline (\d+), .* after close (\d+)`).FindStringSubmatch(out)
	if g == nil {
		t.Fatalf("no goroutines line in the output")
	}
	base, _ := strconv.Atoi(g[1])
	after, _ := strconv.Atoi(g[2])
	if after > base+2 {
		t.Errorf("goroutines after close = %d, want back near the baseline %d", after, base)
	}
}

// runChaos runs the chaos command, which must exit 0 with "violations: 0",
// every fault verified and recovered from, and at least min faults of each
// kind; it returns the output.
func runChaos(t *testing.T, kinds []string, min int, args ...string) string {
	t.Helper()
	out, errOut, code := runCLI(t, append([]string{"chaos"}, args...)...)
	t.Logf("chaos output:\n%s", out)
	if code != 0 {
		t.Fatalf("chaos exit code %d, want 0; stderr: %s", code, errOut)
	}
	if !strings.Contains(out, "\nviolations: 0\n") {
		t.Errorf("output lacks \"violations: 0\"")
	}
	if strings.Contains(out, "problem:") {
		t.Errorf("some fault was not verified or not recovered from (see \"problem:\" lines)")
	}
	var last string // the fault run's summary line (a baseline's says "none")
	for _, l := range regexp.MustCompile(`(?m)^  faults: .*$`).FindAllString(out, -1) {
		if !strings.HasSuffix(l, " none") {
			last = l
		}
	}
	if last == "" {
		t.Fatalf("no faults line of a fault run in the output")
	}
	for _, kind := range kinds {
		m := regexp.MustCompile(`\b` + kind + ` (\d+)`).FindStringSubmatch(last)
		if m == nil {
			t.Errorf("faults line %q lacks %s", last, kind)
			continue
		}
		if n, _ := strconv.Atoi(m[1]); n < min {
			t.Errorf("%s faults injected: %d, want at least %d", kind, n, min)
		}
	}
	return out
}

// Short chaos runs on a 3-master cluster (classic and sharded Pub/Sub) and
// on Sentinel. The sharded and Sentinel runs put every node in its own OS
// process (this test binary re-executed, see TestMain), reporting its reads
// and writes to the run's checker over a pipe.
func TestChaosClusterAndSentinel(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos runs on a cluster and on sentinel; skipped with -short")
	}
	tests := []struct {
		name  string
		kinds []string
		args  []string
	}{
		{"cluster classic, nodes in this process", []string{"kill", "failover", "cut"}, []string{"--topology", "cluster"}},
		// No failover on sharded Pub/Sub here: a sharded subscription can
		// stay on the demoted master after CLUSTER FAILOVER, an open defect
		// (docs/KNOWN_LIMITS.md) that made one 12s run read stale; a suite
		// must not fail on a known, documented defect at random.
		{"cluster sharded, node processes", []string{"kill", "cut"}, []string{"--topology", "cluster-sharded", "--procs", "--faults", "kill,cut"}},
		// A Sentinel kill cycle takes ~13s (the sentinels turn the restarted
		// old master into a replica on their 10s poll): cut first.
		{"sentinel, node processes", []string{"kill", "cut"}, []string{"--topology", "sentinel", "--procs", "--faults", "cut,kill"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			leakcheck.Check(t)
			runChaos(t, tc.kinds, 1, append([]string{"--duration", "12s", "--baseline=false", "--nodes", "3"}, tc.args...)...)
		})
	}
}

// The baseline runs after the fault run, without faults, for as long as the
// fault run lasted; the report sets both side by side.
func TestChaosBaseline(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos run; skipped with -short")
	}
	leakcheck.Check(t)
	out := runChaos(t, []string{"cut"}, 1, "--duration", "5s", "--faults", "cut", "--baseline")
	if got := strings.Count(out, "\nviolations: 0\n"); got != 2 {
		t.Errorf("\"violations: 0\" lines = %d, want 2 (baseline and fault run)", got)
	}
	if !strings.Contains(out, "  faults:       none\n") {
		t.Errorf("the baseline's summary lacks \"faults: none\"")
	}
	// The fault run's summary comes first; the baseline lasts as long.
	el := regexp.MustCompile(`(?m)^summary after ([\d.]+)s`).FindAllStringSubmatch(out, -1)
	bl := regexp.MustCompile(`(?m)^== baseline: .* for ([\d.]+)s \(the fault run's length\)`).FindStringSubmatch(out)
	if len(el) != 2 || bl == nil || bl[1] != el[0][1] {
		t.Errorf("baseline length %v, fault run's summaries %v: want the baseline to run as long as the fault run", bl, el)
	}
	cmp := regexp.MustCompile(`(?m)^  hit ratio +([\d.]+)% +([\d.]+)%`).FindStringSubmatch(out)
	if cmp == nil {
		t.Fatalf("no hit ratio comparison with the baseline in the output")
	}
	if !regexp.MustCompile(`(?m)^    while serving +[\d.]+% +[\d.]+%`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^  not-serving misses +\d+ +\d+`).MatchString(out) {
		t.Errorf("comparison lacks the hit ratio while serving or the not-serving misses")
	}
	if !regexp.MustCompile(`(?m)^  database loads +\d+ +\d+`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^  whole-cache clears +\d+ +\d+`).MatchString(out) {
		t.Errorf("comparison lacks database loads or whole-cache clears")
	}
	if !regexp.MustCompile(`clears by fault kind .*: cut \d+ \(catch-ups \d+\); outside fault windows \d+`).MatchString(out) {
		t.Errorf("no clears by fault kind line")
	}
}

// The replay log's fault kinds, each at least once on a standalone server:
// no read beyond the bound, and each fault's self-check held (runChaos
// fails on a "problem:" line): the node kept away while the log was
// trimmed past its cursor, had entries XDELed, took unlogged publishes
// (DisableReplay writer, maxmemory) or was poisoned cleared instead of
// catching up; after rdb the log's tail was gone and every node cleared;
// after poison the log was replaced under a new epoch.
func TestChaosLogFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos run; skipped with -short")
	}
	leakcheck.Check(t)
	kinds := []string{"trim", "rdb", "oom", "xdel", "unlogged", "poison"}
	out := runChaos(t, kinds, 1, "--duration", "24s", "--baseline=false", "--nodes", "3", "--faults", strings.Join(kinds, ","))
	for _, want := range []string{
		"fault trim      #1: writer with ReplayWindow 1s; log cut to its newest entry",
		"restarted from the snapshot (node ",
		"(entries after ",
		"; every node cleared;",
		"fault oom       #1: maxmemory 1 (noeviction)",
		"; unlogged mark set;",
		"fault xdel      #1: XDEL of ",
		"fault unlogged  #1: a DisableReplay writer",
		"; log replaced under a new epoch;",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	for _, k := range kinds {
		if !regexp.MustCompile(`(?m)^    ` + k + ` +faults \d+, catch-ups \d+, clears \d+`).MatchString(out) {
			t.Errorf("no per-kind line (catch-ups, clears by reason) for %s", k)
		}
	}
}

// Negative control: without broadcasts the same harness must count stale
// reads and exit non-zero, so "violations: 0" above means something.
func TestChaosCatchesMissingInvalidation(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos run; skipped with -short")
	}
	leakcheck.Check(t)
	out, _, code := runCLI(t, "chaos", "--duration", "5s", "--baseline=false", "--faults", "cut", "--broadcast=false")
	if code != 1 {
		t.Errorf("exit code %d, want 1 (violations)", code)
	}
	m := regexp.MustCompile(`(?m)^violations: (\d+)$`).FindStringSubmatch(out)
	if m == nil || m[1] == "0" {
		t.Errorf("violations line = %v, want a positive count; output:\n%s", m, out)
	}
}

func TestChaosUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown fault kind", []string{"chaos", "--faults", "kill,flood"}, `unknown fault kind "flood"`},
		{"too short", []string{"chaos", "--duration", "1s"}, "Duration must be at least 5s"},
		{"one node", []string{"chaos", "--nodes", "1"}, "Nodes must be at least 2"},
		{"unknown topology", []string{"chaos", "--topology", "ring"}, `unknown topology "ring"`},
		{"kind not on topology", []string{"chaos", "--topology", "cluster", "--faults", "slow"}, `"slow" is not available on cluster`},
		{"log kind not on sentinel", []string{"chaos", "--topology", "sentinel", "--faults", "rdb"}, `"rdb" is not available on sentinel`},
		{"argument", []string{"chaos", "extra"}, `unexpected argument "extra"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := runCLI(t, tc.args...)
			if code != 2 {
				t.Errorf("exit code %d, want 2 (usage)", code)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr = %q, want it to mention %q", errOut, tc.want)
			}
		})
	}
}
