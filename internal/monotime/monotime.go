// Package monotime is the process's monotonic clock as nanoseconds since the
// package was initialised. The store (entry deadlines) and the invalidation
// engine (the staleness deadline) both use it, so the cache's Get can read
// the clock once and hand the reading to both.
package monotime

import "time"

var base = time.Now()

// Now returns the monotonic time in nanoseconds since process start
// (strictly: since this package was initialised). It never goes backwards.
func Now() int64 { return int64(time.Since(base)) }
