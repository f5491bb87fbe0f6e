package monotime_test

import (
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go/internal/monotime"
)

func TestNowIsMonotonicAndInNanoseconds(t *testing.T) {
	a := monotime.Now()
	start := time.Now()
	for time.Since(start) < 2*time.Millisecond {
	}
	b := monotime.Now()
	if b-a < int64(2*time.Millisecond) {
		t.Errorf("Now advanced %dns over at least 2ms of wall time, want >= %d", b-a, int64(2*time.Millisecond))
	}
	if a < 0 {
		t.Errorf("Now() = %d, want >= 0", a)
	}
}
