package monotime

import "time"

var base = time.Now()

// Now returns the monotonic time in nanoseconds since process start
// (strictly: since this package was initialised). It never goes backwards.
func Now() int64 { return int64(time.Since(base)) }

// Of converts t to this clock. A time.Now() reading carries a monotonic
// clock reading and converts exactly, whatever the wall clock did since; a
// time without one (parsed, or stripped by Round(0)) converts by its wall
// clock reading.
func Of(t time.Time) int64 { return int64(t.Sub(base)) }

// Time is the inverse of Of: a time.Time carrying the monotonic reading ns
// (its wall clock reading is derived and only approximate after a step).
func Time(ns int64) time.Time { return base.Add(time.Duration(ns)) }

// Clock reads the wall and monotonic clocks. The zero Clock reads the
// system's (time.Now, Now); tests set the fields to step the wall clock
// while monotonic time runs on, as an NTP step or a VM resume does.
// Liveness decisions use Mono only; Wall is for display (Stats.LastAlive).
type Clock struct {
	WallFunc func() time.Time
	MonoFunc func() int64
}

// Mono returns the monotonic reading in nanoseconds (see Now).
func (c Clock) Mono() int64 {
	if c.MonoFunc != nil {
		return c.MonoFunc()
	}
	return Now()
}

// Read returns both readings, taken at the same instant: with the system
// clocks, wall.Add(-d) carries the monotonic reading mono-d exactly.
func (c Clock) Read() (wall time.Time, mono int64) {
	if c.WallFunc == nil && c.MonoFunc == nil {
		w := time.Now()
		return w, Of(w)
	}
	return c.Wall(), c.Mono()
}

// Wall returns the wall clock reading.
func (c Clock) Wall() time.Time {
	if c.WallFunc != nil {
		return c.WallFunc()
	}
	return time.Now()
}
