package leakcheck

import (
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"
)

// Check records the goroutines running now and, when the test ends, polls
// until every goroutine started since then has exited, failing the test with
// their stacks after the deadline (5s). Call it first in a test, before
// anything that starts goroutines; not with t.Parallel.
func Check(t testing.TB) {
	t.Helper()
	before := snapshot()
	t.Cleanup(func() {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		var leaked []string
		for {
			leaked = leaked[:0]
			for id, stack := range snapshot() {
				if _, ok := before[id]; !ok && !ignorable(stack) {
					leaked = append(leaked, stack)
				}
			}
			if len(leaked) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if len(leaked) > 0 {
			sort.Strings(leaked)
			t.Errorf("leakcheck: %d goroutine(s) still running after the test:\n\n%s", len(leaked), strings.Join(leaked, "\n\n"))
		}
	})
}

// snapshot maps goroutine header ("goroutine 12") to its full stack.
func snapshot() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[string]string{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		header, _, _ := strings.Cut(g, " [")
		out[header] = g
	}
	return out
}

// ignorable reports goroutines of the test framework and the runtime, which
// come and go on their own schedule.
func ignorable(stack string) bool {
	if strings.Contains(stack, "invacache-go/") {
		return false
	}
	for _, s := range []string{"testing.", "os/signal.", "runtime/trace."} {
		if strings.Contains(stack, s) {
			return true
		}
	}
	return false
}
