// Package monotime is the process's monotonic clock as nanoseconds since the
// package was initialised. The store (entry deadlines) and the invalidation
// engine (the staleness deadline) both use it, so the cache's Get can read
// the clock once and hand the reading to both.
package monotime
