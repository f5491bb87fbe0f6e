// Package chaos is the run logic of `invacache chaos`: cache nodes over a
// real redis-server, a versioned source of truth, writers, readers, faults on
// a schedule, and a stale-read check against a stated bound.
//
// Setup: Run starts its own redis-server on a free loopback port (package
// internal/redisserver) and one fault-injecting TCP proxy per node (package
// internal/faultproxy), so a fault can hit one node. Each node is an
// invacache.Cache whose Redis driver dials its own proxy; the Redis driver
// shares connections between caches with equal settings, so distinct proxy
// addresses also give every node its own connections.
//
// Workload: writers update the simulated database (simdb) and, under the
// key's database lock, Set (WithInvalidation) or Delete
// (WithDeleteInvalidation) in their node's cache; then Flush. When Flush
// returns the write is acknowledged. Readers GetOrLoad from the database and
// every read is judged by the staleness checker (invacachetest.Checker): a read
// that started at t and returned version v is a violation if a newer version
// was acknowledged before t − bound, where bound = MaxStaleness + publish
// window + slack.
//
// Faults, in rotation until the run ends:
//
//   - kill: redis-server is killed (SIGKILL) and restarted on the same port;
//   - cut: one node's links are reset by its proxy, or every subscriber is
//     disconnected by Redis (CLIENT KILL TYPE pubsub), alternately;
//   - blackhole: one node's proxy stops forwarding without closing anything
//     (no FIN, no RST) until the node stops serving, then heals;
//   - slow: client-output-buffer-limit pubsub is lowered, one node's proxy
//     delays everything Redis sends it, and a flooder publishes until Redis
//     drops that subscriber (verified in the server log);
//   - partition: one node's proxy refuses connections (or blackholes them)
//     while its writers write: the node's outbox retries, and its writes are
//     acknowledged only when Flush returns after the heal (verified).
//
// After each fault Run waits until every node is subscribed and serving
// again and records runtime.NumGoroutine; every report interval it records
// the heap in use.
package chaos
