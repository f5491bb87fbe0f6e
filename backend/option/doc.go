// Package option holds the per-call options of Set, Delete and Clear:
// time to live, no expiration, and whether the write is broadcast to the other
// nodes (broadcasting is opt-in per call; a plain write is local).
package option
