package main

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// samples collects latencies; safe for concurrent use.
type samples struct {
	mu  sync.Mutex
	all []time.Duration // guarded by mu
}

func (s *samples) add(d time.Duration) {
	s.mu.Lock()
	s.all = append(s.all, d)
	s.mu.Unlock()
}

// take returns the samples collected so far and starts over.
func (s *samples) take() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.all
	s.all = nil
	return out
}

// snapshot returns a copy of the samples.
func (s *samples) snapshot() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.all)
}

// summary is a sorted copy of latencies with percentile access.
type summary []time.Duration

func summarize(d []time.Duration) summary {
	s := slices.Clone(d)
	slices.Sort(s)
	return s
}

// pct returns the p-th percentile (0 < p <= 100), nearest rank; 0 if empty.
func (s summary) pct(p float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	i := int(p/100*float64(len(s))+0.999999) - 1
	i = max(0, min(i, len(s)-1))
	return s[i]
}

func (s summary) max() time.Duration {
	if len(s) == 0 {
		return 0
	}
	return s[len(s)-1]
}

// fmtDur prints a latency compactly with 3 significant digits ("182µs",
// "1.25ms"); "-" for none.
func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d.Nanoseconds())
	case d < time.Millisecond:
		return trimFloat(float64(d)/float64(time.Microsecond)) + "µs"
	case d < time.Second:
		return trimFloat(float64(d)/float64(time.Millisecond)) + "ms"
	default:
		return trimFloat(d.Seconds()) + "s"
	}
}

func trimFloat(f float64) string {
	switch {
	case f >= 100:
		return fmt.Sprintf("%.0f", f)
	case f >= 10:
		return fmt.Sprintf("%.1f", f)
	default:
		return fmt.Sprintf("%.2f", f)
	}
}
