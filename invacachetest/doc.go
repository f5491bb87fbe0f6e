// Package invacachetest lets you test code that uses InvaCache the way it
// runs in production, several replicas sharing invalidations, inside one
// `go test`, without Redis. It has no dependencies beyond the standard
// library and the invacache module.
//
// # Replicas in one test
//
// NewCluster starts n replicas of a Cache[V] on an in-process bus and closes
// them when the test ends:
//
//	c := invacachetest.NewCluster[User](t, 2, config.InvaCacheConfig{
//		Invalidation: &config.InvalidationConfig{MaxStaleness: 300 * time.Millisecond},
//	})
//	api, worker := c.Node(0), c.Node(1)
//
// Each Node is a full invacache.Cache[V] running the same protocol as over
// Redis: self-suppression, sequence numbers and gaps, liveness pings and the
// MaxStaleness bound. Hand the nodes to the code under test like any cache.
//
// # Faults
//
// Each Node's link to the bus can be broken the ways a Redis link breaks:
//
//   - Drop(n): the next n messages are lost (Pub/Sub is at-most-once). The
//     next message from the same writer reveals the sequence gap.
//   - Disconnect / Reconnect: the connection closes; the replica stops
//     serving at once and handles the resubscribe as a gap.
//   - Stall / Unstall: messages and pings are held (a half-open TCP link, a
//     stuck server). Past MaxStaleness the replica stops serving cached
//     values; it serves again once the link is proven alive.
//   - FailPublish(n): the replica's next n publishes fail; they are retried.
//
// The bus keeps a replay log, as the Redis driver does: after a gap a
// replica catches up from it when it can, and clears its cache otherwise.
// Cache.WaitServing waits until a replica serves again after a fault.
//
// # Checking reads against the staleness bound
//
// A Checker judges reads of a versioned store against a stated bound, the
// same checker `invacache chaos` and `invacache demo` use. Record each write
// when it is acknowledged and each read when it returns:
//
//	v := db.Write(key)                                // your write path...
//	cache.Delete(key, option.WithDeleteInvalidation())
//	cache.Flush(ctx)
//	checker.Ack(key, v)                               // ...is acknowledged here
//
//	start := time.Now()
//	got, err := reader.GetOrLoad(key, loadFromDB)     // your read path
//	checker.Read(key, got.Version, start)
//
//	checker.Verify(t)                                 // fails t on stale reads
//
// The definition: a write of version v to key k is *acknowledged* at time a
// when it has been written to the database and its invalidation has left the
// writer's process (the writer's cache Flush returned). A read of k that
// started at time t and returned version v is *stale* if some version w > v
// of k was acknowledged before t − Bound. Bound is what the system promises:
// MaxStaleness (how long a node may serve without proof its subscription is
// alive) + the publish window (how long an acknowledged message may still be
// in flight to a live subscriber) + a stated slack (scheduling noise).
//
// Reads are timed from their start, the strict choice: a read that began
// after the write was acknowledged (plus the bound) must see it. A read path
// that forgets to invalidate, caches a load that raced a write, or keeps
// serving through a gap shows up as stale reads once the faults above hit it.
package invacachetest
