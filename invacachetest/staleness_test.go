package invacachetest

import (
	"strings"
	"testing"
	"time"
)

func TestRead(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b := Bound{MaxStaleness: time.Second, PublishWindow: 0, Slack: 0}
	tests := []struct {
		name    string
		acks    []uint64 // acknowledged at base, base+1ms, ...
		version uint64
		readAt  time.Duration // after base
		want    bool
	}{
		{"no acks", nil, 0, 10 * time.Second, false},
		{"newest version", []uint64{1, 2}, 2, 10 * time.Second, false},
		{"old version within bound", []uint64{1, 2}, 1, 500 * time.Millisecond, false},
		{"old version past bound", []uint64{1, 2}, 1, 2 * time.Second, true},
		{"out of order acks keep the max", []uint64{3, 2}, 2, 2 * time.Second, true},
		{"newer than acknowledged", []uint64{1}, 5, 2 * time.Second, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewChecker(b)
			for i, v := range tc.acks {
				c.AckAt("k", v, base.Add(time.Duration(i)*time.Millisecond))
			}
			if got := c.Read("k", tc.version, base.Add(tc.readAt)); got != tc.want {
				t.Errorf("Read(version %d at +%v) = %v, want %v", tc.version, tc.readAt, got, tc.want)
			}
			wantStale := uint64(0)
			if tc.want {
				wantStale = 1
			}
			if got := c.Stale(); got != wantStale {
				t.Errorf("Stale() = %d, want %d", got, wantStale)
			}
			if got := c.FirstStale() != ""; got != tc.want {
				t.Errorf("FirstStale() set = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestBoundString(t *testing.T) {
	b := Bound{MaxStaleness: 3 * time.Second, PublishWindow: 100 * time.Millisecond, Slack: 500 * time.Millisecond}
	if got, want := b.Total(), 3600*time.Millisecond; got != want {
		t.Errorf("Total() = %v, want %v", got, want)
	}
	if got := b.String(); !strings.HasPrefix(got, "3.6s = MaxStaleness 3s") {
		t.Errorf("String() = %q", got)
	}
}

func TestMaxAge(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewChecker(Bound{MaxStaleness: time.Second})
	c.AckAt("k", 1, base)
	c.AckAt("k", 2, base.Add(100*time.Millisecond))
	c.Read("k", 2, base.Add(5*time.Second)) // fresh: no age
	if got := c.MaxAge(); got != 0 {
		t.Fatalf("MaxAge() after a fresh read = %v, want 0", got)
	}
	c.Read("k", 1, base.Add(400*time.Millisecond)) // version 2 acknowledged 300ms before
	if got, want := c.MaxAge(), 300*time.Millisecond; got != want {
		t.Errorf("MaxAge() = %v, want %v", got, want)
	}
	c.Read("k", 0, base.Add(200*time.Millisecond)) // version 1 acknowledged 200ms before
	if got, want := c.MaxAge(), 300*time.Millisecond; got != want {
		t.Errorf("MaxAge() after a younger stale read = %v, want %v (the max)", got, want)
	}
}

// Acks older than ackRetention are forgotten, but a read of a version they
// superseded is still stale, and the list stays bounded.
func TestRetention(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewChecker(Bound{MaxStaleness: time.Second})
	const n = 10000
	step := 10 * ackRetention / n // the run spans ten retention periods
	for i := 1; i <= n; i++ {
		c.AckAt("k", uint64(i), base.Add(time.Duration(i)*step))
	}
	end := base.Add(time.Duration(n) * step)
	if got, max := len(c.acks["k"]), 2*int(ackRetention/step)+2; got > max {
		t.Errorf("acks kept = %d, want at most %d (two retention periods)", got, max)
	}
	if !c.Read("k", 1, end) {
		t.Errorf("Read(version 1) at the end = fresh, want stale (superseded long ago)")
	}
	if c.Read("k", n, end) {
		t.Errorf("Read(newest version) = stale, want fresh")
	}
	if c.Read("k", n-1, end.Add(500*time.Millisecond)) {
		t.Errorf("Read(previous version) within the bound = stale, want fresh")
	}
}
