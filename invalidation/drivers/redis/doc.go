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
//     HandleLinkUp; every lost connection is HandleLinkDown;
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
//   - an error reply to SUBSCRIBE (MOVED after a cluster failover, NOPERM)
//     also starts over on a new connection; on a cluster, every error makes
//     the client reload its slot map, so the subscription follows the slot
//     to the promoted replica;
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
// longer than DialTimeout, and never fails it.
//
// # Sharing connections
//
// Drivers built in one process from equal connection settings (address(es),
// DB, credentials, TLS, pool settings) share one publish pool and one
// subscription connection, reference-counted: 200 caches on one Redis hold
// one subscription connection and at most PoolSize publish connections. The
// subscription connection multiplexes every channel in use; a handler for a
// channel already subscribed learns of the link through the next PONG.
//
// # Publishing
//
// Publish sends a batch's payloads in one round trip on the caller's
// goroutine, with no handoff on the latency path: the replay log's script
// (below), or one pipeline of PUBLISH with DisableReplay. go-redis honours a context's deadline
// but not its cancellation once a command is on the wire, so the driver
// tracks its publish connections and, when the context is cancelled (the
// engine does so on Close), interrupts those blocked waiting for a reply: a
// stuck link never holds Publish past the cancellation. With a caller's
// client (Config.Client) the I/O runs on a goroutine instead, which finishes
// within that client's read timeout.
//
// # Replay log
//
// Pub/Sub is at-most-once, so the driver also logs what it publishes: one
// Lua script per batch appends each payload to a Redis Stream next to the
// channel ("{channel}:log", with the log's epoch in "{channel}:epoch", both
// in the channel's cluster slot) and publishes it in a frame carrying the
// epoch and the entry id Redis assigned. A payload is in the log if and only
// if it was published. Subscribers hand each frame to
// Handler.HandleLogMessage with its position, and the Driver implements
// invalidation.Replayer: a cache that may have missed messages (a reconnect,
// a sequence gap, a lapse of MaxStaleness) reads the entries after its
// position, in chunks, and serves again without clearing. Only when the log
// cannot prove that it still holds every entry since that position (trimmed
// past it, recreated with a new epoch by a Redis restart without
// persistence, or shorter after a failover to a replica that lost its tail)
// does the cache clear (invacache.ClearReasonNoContinuity).
//
// ReplayWindow (default 1m) bounds how long an entry stays, trimmed on the
// ids Redis assigns (no host's clock), and the log never holds more than a
// million entries. The user needs EVALSHA/EVAL, XADD, XTRIM, XINFO, XRANGE,
// GET, SET, DEL and EXISTS on the log's keys: New checks this when Redis
// answers and fails with an error wrapping ErrReplayPermission that names
// the refused command. DisableReplay turns the log off (plain PUBLISH; every
// gap clears). Payloads published outside the log, such as an operator's
// `redis-cli publish`, are delivered through HandleMessage as before.
//
// # Topologies
//
// Address alone is a single server. Addresses (one or more seed nodes)
// selects Redis Cluster; with ShardedPubSub the driver uses SPUBLISH and
// SSUBSCRIBE (Redis 7), otherwise PUBLISH/SUBSCRIBE, which a cluster
// broadcasts to every node. MasterName with Addresses (the sentinels) selects
// Sentinel. Username is the ACL user; TLS enables TLS with optional CA,
// client certificate and server name. Pub/Sub ignores the DB number: channels
// are global to a server, so distinct applications need distinct Channel
// names.
package redis
