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
// Publish sends a batch's payloads in one pipeline on the caller's goroutine
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
// Sentinel. Username is the ACL user; TLS enables TLS with optional CA,
// client certificate and server name. Pub/Sub ignores the DB number: channels
// are global to a server, so distinct applications need distinct Channel
// names.
package redis
