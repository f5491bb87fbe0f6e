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

func TestOfAndTimeAreInverse(t *testing.T) {
	now := time.Now()
	ns := monotime.Of(now)
	if got := monotime.Of(monotime.Time(ns)); got != ns {
		t.Errorf("Of(Time(%d)) = %d, want %d", ns, got, ns)
	}
	if got := monotime.Time(ns); !got.Equal(now) {
		t.Errorf("Time(Of(now)) = %v, want %v", got, now)
	}
	// Of never places an earlier reading after a later one.
	if a, b := monotime.Of(now), monotime.Now(); a > b {
		t.Errorf("Of(an earlier time.Now()) = %d > Now() = %d", a, b)
	}
	var c monotime.Clock
	wall, mono := c.Read()
	if got := monotime.Of(wall); got != mono {
		t.Errorf("Clock{}.Read() = (%v, %d): Of(wall) = %d, want the same instant", wall, mono, got)
	}
}
