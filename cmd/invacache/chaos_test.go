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
	out, errOut, code := runCLI(t, "chaos", "--duration", "30s")
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
	faults := regexp.MustCompile(`(?m)^  faults: .*$`).FindString(out)
	for _, kind := range []string{"kill", "cut", "blackhole", "slow", "partition"} {
		m := regexp.MustCompile(`\b` + kind + ` (\d+)`).FindStringSubmatch(faults)
		if m == nil {
			t.Errorf("faults line %q lacks %s", faults, kind)
			continue
		}
		if n, _ := strconv.Atoi(m[1]); n < 2 {
			t.Errorf("%s faults injected: %d, want at least 2", kind, n)
		}
	}
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

// Negative control: without broadcasts the same harness must count stale
// reads and exit non-zero, so "violations: 0" above means something.
func TestChaosCatchesMissingInvalidation(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos run; skipped with -short")
	}
	leakcheck.Check(t)
	out, _, code := runCLI(t, "chaos", "--duration", "5s", "--faults", "cut", "--broadcast=false")
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
