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
// Topologies (Config.Topology): Standalone as above; Cluster and
// ClusterSharded, a 3-master Redis Cluster with one replica per master
// (classic or sharded Pub/Sub); Sentinel, a master, one replica and three
// sentinels. There the faults are: kill (SIGKILL the master of the channel,
// wait for a replica's promotion, restart the old master, which rejoins as
// a replica), failover (CLUSTER FAILOVER on a replica, or SENTINEL FAILOVER;
// not in Sentinel's default rotation: a cycle takes ~20s) and cut (CLIENT
// KILL TYPE pubsub on every data server).
//
// Processes (Config.Processes): every node runs in its own OS process, the
// binary re-executed (NodeProcess must be called first in main). A node
// process reads and writes the database through the run's database server
// on loopback TCP and reports its reads, acknowledgements and stats to the
// run over a pipe; the run's checker judges every read.
//
// Baseline (Config.Baseline): after the fault run, the same workload runs
// without faults on a fresh deployment for as long as the fault run lasted
// (a fault cycle may run past Duration), and the report sets hit ratio,
// database loads, clears and catch-ups side by side. Whole-cache clears and
// catch-ups are also counted per fault kind (from injection to recovery).
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
// Faults on the replay log (issue 18), on Standalone, Cluster and
// ClusterSharded (not Sentinel: not tried there). On Standalone one node is
// kept away (its proxy refuses) while the log changes, and its catch-up must
// clear (verified); on a cluster the nodes have no proxy, so every
// subscription is closed (CLIENT KILL TYPE pubsub) instead, and the check is
// on the log's state:
//
//   - trim: a writer with a 1s ReplayWindow; the log cut to its newest entry
//     (past the away node's cursor; on a cluster to nothing, in the MULTI
//     that closes the subscriptions) and trimmed every 50ms while the nodes
//     catch up;
//   - rdb: SAVE, a second of writes, SIGKILL, restart from the snapshot (on
//     a cluster the replica is told not to fail over); the log's last entry
//     before the kill is gone (verified) and, on Standalone, every node
//     cleared;
//   - oom: maxmemory 1 with noeviction for 3s; the writers' publishes left
//     the unlogged mark (verified);
//   - xdel: XDEL of the entry newest when the node left, one in the middle
//     and the newest; or of the first, then XTRIM past it; on a cluster the
//     newest entry, in the MULTI that closes the subscriptions;
//   - unlogged: a DisableReplay writer (its writes judged like the others')
//     and raw PUBLISHes of keys (no database change: a raw PUBLISH reaches
//     only the nodes connected then, by design) while the node is away;
//   - poison: SET of the log key (wrong type) or XADD of the maximum id,
//     alternately; the next publish replaced the log under a new epoch
//     (verified).
//
// The report gives, per fault kind, the catch-ups and the clears by reason
// counted from each fault's injection to its recovery.
//
// After each fault Run waits until every node is subscribed and serving
// again and records runtime.NumGoroutine; every report interval it records
// the heap in use.
package chaos
