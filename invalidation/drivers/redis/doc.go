// Package redis is the Redis Pub/Sub driver for InvaCache-Go's distributed
// invalidation (go-redis v9). A blank import registers it as "redis":
//
//	import _ "github.com/halilbulentorhon/invacache-go/invalidation/drivers/redis"
//
// and InvalidationConfig{Type: "redis", DriverConfig: map[string]any{...}} or
// InvalidationConfig{Type: "redis", Redis: &config.RedisInvalidationConfig{...}}
// selects it; both forms map onto the driver's own Config (see ConfigFrom).
// New builds a driver value from a Config to pass in
// InvalidationConfig.Driver instead (several caches may share it), and
// NewClient builds a go-redis client exactly as the driver does.
//
// The driver only moves opaque payloads: the engine (internal/engine)
// encodes them, numbers them, retries them and decides when a cache may serve.
// The driver's job is to report the subscription's state truthfully:
//
//   - every SUBSCRIBE confirmation (first or after a reconnect) is
//     HandleLinkUp; every lost connection is HandleLinkDown. The driver
//     matches each reply with the command that asked for it, so a reply no
//     command on the current connection asked for (go-redis redialled and
//     resubscribed by itself after a failed write, while the reader was in
//     a handler) is a link down and up too, never a silent reconnect;
//   - a PING is sent through the subscription connection every
//     SubscribeOptions.PingInterval (default 1s), carrying its send time;
//     each PONG is HandleAliveAt(that send time): a PONG that waited behind
//     a backlog proves only what was published before its PING, so it
//     counts from then;
//   - with no PONG to a PING sent within max(3×PingInterval, 1s) on a
//     connection holding a confirmed subscription, the link is declared dead
//     (ErrLinkDead): the connection is closed and a new one subscribes. This
//     covers half-open and blackholed links, a frozen server, and a
//     subscriber that Redis dropped at client-output-buffer-limit while its
//     backlog is still being read (go-redis notices the drop only after the
//     backlog);
//   - NOPERM to a channel's SUBSCRIBE is that channel's HandleLinkDown only
//     (ErrNoPermission; see Sharing connections); any other error reply
//     (MOVED after a cluster failover) starts over on a new connection; on a
//     cluster, every error makes the client reload its slot map, so the
//     subscription follows the slot to the promoted replica;
//   - reconnects back off from 20ms to 1s with jitter, never busy-looping.
//
// Messages are read with PubSub.Receive, never PubSub.Channel (which hides
// resubscribes and drops messages when its buffer is full), and handed to the
// handlers directly, so the driver itself never drops one.
//
// # Startup
//
// The driver implements invalidation.ConnectTimeouter with DialTimeout:
// NewCache waits at most DialTimeout for the first link-up. If Redis is not
// reachable by then, NewCache still returns a working cache whose link is
// down: local Set/Get work, Get misses while MaxStaleness is enforced (the
// node has no proof that it hears its peers), broadcasts wait in the outbox,
// and the driver keeps connecting in the background; once subscribed, the
// cache clears and serves normally. An unreachable Redis never blocks NewCache
// longer than DialTimeout, and never fails it (a refused or timed-out dial may
// pass). A refusal only a configuration change fixes fails NewCache at once,
// with an error naming the cause and wrapping config.ErrInvalidConfig: the
// credentials (ErrAuth: WRONGPASS for a wrong password or an unknown or
// disabled ACL user, NOAUTH), the TLS handshake (ErrTLS: a certificate the
// configured CA does not sign, a server name mismatch), a channel the ACL
// user may not subscribe to (ErrNoPermission). Two TLS mismatches look like
// a network failure and are retried: a plain client to a TLS port sees the
// connection closed, a TLS client to a plain port a handshake timeout.
//
// # go-redis's own log lines
//
// go-redis (v9.23) writes some lines of its own, such as "connection pool:
// failed to dial", to its package-level logger (stderr by default), not to
// Logger: it has no per-client logger. The driver leaves that process-wide
// setting alone; a program that wants those lines in its slog.Logger, or
// silenced, sets it once at startup with goredis.SetLogger (or
// logging.Disable from github.com/redis/go-redis/v9/logging).
//
// # Sharing connections
//
// Drivers built in one process from equal connection settings (address(es),
// DB, credentials, TLS, pool settings) share one publish pool and one
// subscription connection, reference-counted: 200 caches on one Redis hold
// one subscription connection and at most PoolSize publish connections. The
// subscription connection multiplexes every channel in use, one SUBSCRIBE
// per channel; a handler for a channel already subscribed learns of the link
// through the next PONG, and only through a PONG to a PING sent after it
// attached. A channel Redis refuses (NOPERM) fails only its own handlers
// (ErrNoPermission, wrapping config.ErrInvalidConfig, which makes NewCache
// fail) and is retried with backoff; the other channels stay up.
//
// # Publishing without a cache
//
// NewPublisher returns a Publisher: a cache's broadcast path (envelope,
// outbox, retries, Publish) without a cache or a subscription, for a service
// that writes to the database and must invalidate every replica.
//
// # Replay log
//
// Unless DisableReplay is set, the driver keeps a bounded log of what it
// publishes, so that a node that lost its link catches up instead of
// clearing its cache (the driver implements invalidation.Replayer):
//
//   - Publish runs one Lua script per batch (EVALSHA, EVAL when Redis does
//     not know it yet) that, for each payload, appends it to a Redis Stream
//     (XADD) and publishes it in a frame carrying the log's epoch and the
//     entry id Redis assigned. A payload is in the log if and only if it was
//     published in a frame. Subscribers hand framed payloads to
//     Handler.HandleLogMessage with their position, everything else to
//     HandleMessage.
//   - Keys: the stream "{channel}:log", the epoch "{channel}:epoch", a meta
//     hash "{channel}:meta" (the history: run_id, barrier), a checkpoint
//     list "{channel}:ckpt", the unlogged mark "{channel}:unlogged" and the
//     byte count "{channel}:bytes" (a
//     channel with its own hash tag keeps it: "app:{x}:inv:log"), in the
//     channel's cluster slot, so the script runs on the node that owns the
//     channel (classic and sharded Pub/Sub). The epoch is a random id
//     written when the log starts: a Redis restarted without persistence, a
//     key evicted, a key of the wrong type or exhausted ids start a new log,
//     and a cursor of the old one cannot catch up.
//   - The log's history: the meta hash records the run_id of the server the
//     log lives on. After a restart or a failover (another run_id) the log
//     may have lost its tail (an RDB snapshot, an AOF not fsynced at every
//     write, asynchronous replication), so the first LogHead or catch-up
//     that sees it sets a barrier at the log's end: every catch-up from a
//     cursor before it fails (those nodes clear once), while nodes linked
//     throughout keep going. Only a restart of a server with appendonly yes
//     and appendfsync always (asked with CONFIG GET; a user without CONFIG
//     counts as not) that was not promoted since it started keeps the
//     history. The check runs on the channel's master only (a demoted
//     master reached through a stale cluster map is refused and retried).
//   - The unlogged mark: a message that does not go through the log (every
//     publish with DisableReplay; a batch whose XADD Redis refused: OOM at
//     maxmemory, NOPERM, ...) is still published, bare, by a script that
//     also sets a new random unlogged mark (it may run at maxmemory:
//     allow-oom). Each logged entry carries the mark current when it was
//     appended; a catch-up whose cursor entry carries another mark than the
//     current one fails: a message outside the log came after the cursor.
//     LogStats counts these publishes (Unlogged; Unmarked when even the
//     mark could not be set, which a Warn line reports too).
//   - Retention: entries older than ReplayWindow (default 1m) are trimmed
//     (XTRIM MINID at the newest id's milliseconds minus the window, on the
//     ids Redis assigns: no host's clock is compared; at most once a second), the log's bytes are
//     capped by MaxLogBytes (default 128 MiB; a running total and a list of
//     checkpoints, one per sixteenth of the cap, make it O(1) amortized per
//     publish), and the stream never holds much more than 1M entries
//     (MAXLEN ~). A trim never fails a publish. Sizing MaxLogBytes: window
//     seconds × messages per second × (payload bytes + 64); a payload is
//     about 30 bytes plus each key's length + 1. For example 10,000
//     single-key messages a second with 40-byte keys over a one-minute
//     window: 60 × 10,000 × (71 + 64) ≈ 81 MB.
//   - Replay reads on the publish connections (never the subscription), in
//     chunks of 512 entries, up to the head as it stood when it started.
//     Each chunk is read by one script that proves it starts at the cursor:
//     same epoch, no entry after the cursor deleted (XINFO STREAM
//     max-deleted-entry-id), and the cursor's own entry the first one
//     returned (trimming cuts the front and does not move
//     max-deleted-entry-id, so the cursor entry's presence proves nothing
//     after it was trimmed, between two chunks too). The first chunk also
//     checks the log's history, the unlogged mark and that entries-added
//     did not go backwards. Else it returns invalidation.ErrNoContinuity
//     and the node clears.
//   - Raw payloads published by hand (redis-cli publish <channel> <key>)
//     are not logged and leave no mark: they invalidate the nodes linked at
//     that moment only. Operators invalidate through the log with `invacache
//     invalidate` or the Redis Functions library invacache.lua (FCALL
//     invacache_invalidate 1 <channel> <key>...; see the README).
//   - The Redis user needs, on the log's keys (Redis 7 or later): EVALSHA,
//     EVAL, INFO, XADD, XTRIM, XRANGE, XINFO, EXISTS, TYPE, DEL, GET, SET,
//     MGET, HGET, HSET, HDEL, RPUSH, LPOP and LINDEX, and PUBLISH
//     (SPUBLISH) on the channel. New queues each of them in a MULTI that it
//     discards (Redis checks permissions when it queues, and runs nothing):
//     when Redis answers and refuses one, New (so NewCache) fails with
//     ErrReplayPermission (ErrNoPermission for PUBLISH) naming it.
//     NewPublisher does not connect, so it does not check: its publishes go
//     out anyway (outside the log when the log is refused) and are counted.
//
// With DisableReplay, Publish publishes bare payloads (PUBLISH or SPUBLISH)
// and sets the unlogged mark in the same script (plain PUBLISH when the user
// may not run scripts), LogHead and Replay return
// invalidation.ErrReplayDisabled, and every gap clears the node's cache.
//
// # Publishing
//
// Publish sends a batch's payloads in one round trip on the caller's goroutine
// (no handoff on the latency path). go-redis honours a context's deadline
// but not its cancellation once a command is on the wire, so the driver
// tracks its publish connections and, when the context is cancelled (the
// engine does so on Close), interrupts those blocked waiting for a reply: a
// stuck link never holds Publish past the cancellation. With a caller's
// client (Config.Client) the I/O runs on a goroutine instead, which finishes
// within that client's read timeout.
//
// # Topologies
//
// Address alone is a single server. Addresses (one or more seed nodes)
// selects Redis Cluster; with ShardedPubSub the driver uses SPUBLISH and
// SSUBSCRIBE (Redis 7), otherwise PUBLISH/SUBSCRIBE, which a cluster
// broadcasts to every node. MasterName with Addresses (the sentinels) selects
// Sentinel; the driver then asks the sentinels every ping interval which
// server is the master and moves the subscription there (a link down and up)
// when it is on another one, as after a failover that left the old master
// running (go-redis moves its pooled connections, not a subscription). Username is the ACL user; TLS enables TLS with optional CA,
// client certificate and server name. Pub/Sub ignores the DB number: channels
// are global to a server, so distinct applications need distinct Channel
// names.
package redis
