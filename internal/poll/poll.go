// Package poll is the tests' one way to wait for something to happen: it
// checks a condition every few milliseconds until it holds or a deadline
// passes, instead of sleeping for a fixed time and hoping.
package poll

import (
	"testing"
	"time"
)

// Interval is how often a condition is checked.
const Interval = 5 * time.Millisecond

// Within calls cond every Interval until it returns true (Within returns
// true) or timeout passes (false). cond is always called at least once.
func Within(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(Interval)
	}
	return true
}

// Until is Within that fails t (Fatalf) with "timed out after <timeout>
// waiting for <what>" when timeout passes first.
func Until(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Within(timeout, cond) {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}
