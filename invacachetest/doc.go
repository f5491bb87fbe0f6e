// Package invacachetest helps users test their own read and write paths
// against InvaCache's staleness bound.
//
// # The staleness checker
//
// A Checker judges reads of a versioned store against a stated bound. The
// definition: a write of version v to key k is *acknowledged* at time a when
// it has been written to the database and its invalidation has left the
// writer's process (the writer's cache Flush returned). A read of k that
// started at time t and returned version v is *stale* if some version w > v
// of k was acknowledged before t − Bound. Bound is what the system promises:
// MaxStaleness (how long a node may serve without proof its subscription is
// alive) + the publish window (how long an acknowledged message may still be
// in flight to a live subscriber) + a stated slack (scheduling noise).
//
// Reads are timed from their start, the strict choice: a read that began
// after the write was acknowledged (plus the bound) must see it.
//
// The `invacache chaos` and `invacache demo` commands use this checker.
package invacachetest
