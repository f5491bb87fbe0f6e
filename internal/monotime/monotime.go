package monotime

import "time"

var base = time.Now()

// Now returns the monotonic time in nanoseconds since process start
// (strictly: since this package was initialised). It never goes backwards.
func Now() int64 { return int64(time.Since(base)) }
