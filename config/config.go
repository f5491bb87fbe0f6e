package config

import (
	"log/slog"
	"time"

	"github.com/halilbulentorhon/invacache-go/invalidation"
)

// Backend names accepted in InvaCacheConfig.BackendName.
const (
	BackendInMemory = "in-memory"
)

// Defaults applied where a field is zero.
const (
	DefaultShardCount      = 64
	DefaultCapacity        = 10_000
	DefaultSweeperInterval = time.Second
	DefaultMaxStaleness    = 3 * time.Second
	DefaultRetryBackoffMin = 10 * time.Millisecond
	DefaultRetryBackoffMax = time.Second
	DefaultMaxMessageBytes = 64 << 10
	DefaultFlushTimeout    = 2 * time.Second
	DefaultOutboxMaxKeys   = 100_000
	DefaultOutboxMaxBytes  = 16 << 20
)

// MinMaxStaleness is the shortest InvalidationConfig.MaxStaleness accepted.
// The liveness proof is a PING round trip through the subscription every
// MaxStaleness/4; a shorter bound would lapse between proofs and give a
// cache that serves a fraction of its reads and clears many times a second.
const MinMaxStaleness = 80 * time.Millisecond

// Gap strategies for InvalidationConfig.GapStrategy.
const (
	// GapClear drops the whole local cache when messages may have been missed.
	GapClear = "clear"
	// GapNone keeps serving after a possible loss; entries may stay stale until
	// their TTL runs out.
	GapNone = "none"
)

// InvaCacheConfig configures one cache. The zero value is a valid local cache
// with defaults; NewCache copies it and never modifies the caller's value.
type InvaCacheConfig struct {
	// BackendName selects the store. Empty means "in-memory", the only backend.
	BackendName string `json:"backendName" yaml:"backendName"`
	// Backend configures the store. Nil means defaults.
	Backend *BackendConfig `json:"backend" yaml:"backend"`
	// Invalidation configures distributed invalidation. Nil means a purely
	// local cache.
	Invalidation *InvalidationConfig `json:"invalidation,omitempty" yaml:"invalidation,omitempty"`
	// Logger receives warnings and errors. Nil means silent.
	Logger *slog.Logger `json:"-" yaml:"-"`
}

// BackendConfig holds the configuration of each backend.
type BackendConfig struct {
	InMemory *InMemoryConfig `json:"inMemory" yaml:"inMemory"`
}

// InMemoryConfig configures the in-memory store (built on
// github.com/maypok86/otter/v2).
type InMemoryConfig struct {
	// ShardCount has no effect: the store is not sharded (otter's reads are
	// lock-free). It is kept, and validated (not negative, at most
	// Capacity), so existing configurations keep working. Default 64.
	//
	// Deprecated: no effect; remove it.
	ShardCount int `json:"shardCount" yaml:"shardCount"`
	// SweeperInterval has no effect: expired entries are never returned, and
	// are removed by otter's timer wheel during its maintenance when Ttl is
	// set; without a default Ttl (so that reads never read a clock) an entry
	// given its own TTL is removed by the read that finds it expired, or by
	// the size policy.
	// It is kept, and validated (not negative), so existing configurations
	// keep working. Default 1s. In a file (Parse): a duration string ("30s").
	//
	// Deprecated: no effect; remove it.
	SweeperInterval time.Duration `json:"sweeperInterval" yaml:"sweeperInterval"`
	// Capacity is the hard bound on entries (otter's MaximumSize): once the
	// store's maintenance has run after a write, it holds at most Capacity
	// entries. Must be at least ShardCount. Default 10000.
	Capacity int `json:"capacity" yaml:"capacity"`
	// Ttl is the default time to live, as time.ParseDuration reads it
	// ("10m", "1h"). Empty means entries do not expire unless a Set says so.
	Ttl string `json:"ttl" yaml:"ttl"`
}

// InvalidationConfig configures distributed invalidation. Either Type (with
// DriverConfig or the typed Redis field) or Driver selects the bus.
type InvalidationConfig struct {
	// Type names a registered driver ("redis" after a blank import of the
	// Redis driver, "memory" for the in-process bus).
	Type string `json:"type" yaml:"type"`
	// DriverConfig holds the driver's settings by key.
	DriverConfig map[string]any `json:"driverConfig,omitempty" yaml:"driverConfig,omitempty"`
	// Redis is the typed form of the Redis driver's settings. When set, it is
	// used instead of DriverConfig.
	Redis *RedisInvalidationConfig `json:"redis,omitempty" yaml:"redis,omitempty"`
	// Driver is a ready driver value. When set, Type, DriverConfig and Redis
	// are ignored, and Close does not close the driver (its owner does).
	// Several caches may share one driver.
	Driver invalidation.Driver `json:"-" yaml:"-"`

	// MaxStaleness bounds how long a node serves cached values without proof
	// that its subscription is alive, whether it knows its link is down (a
	// reset, a killed Redis) or not (a half-open link). Past it, Get misses
	// and GetOrLoad loads without caching until the link is proven alive and
	// the node caught up from the replay log or cleared.
	// Default 3s; at least MinMaxStaleness (80ms). In a file (Parse): "3s".
	MaxStaleness time.Duration `json:"maxStaleness" yaml:"maxStaleness"`
	// DisableMaxStaleness turns the staleness bound off: the node serves
	// whatever it holds while the link is down. Default false.
	DisableMaxStaleness bool `json:"disableMaxStaleness" yaml:"disableMaxStaleness"`
	// OutageStaleness, when set, is a longer bound that applies only while
	// the node cannot reach the bus at all (the Redis driver: its dials are
	// refused or time out): it keeps serving cached values until its last
	// proof of life plus OutageStaleness, instead of MaxStaleness, so a
	// Redis outage does not move every replica's reads to the database at
	// once. The trade: during that window an invalidation that reached Redis
	// before the outage but not this node may be missed for up to
	// OutageStaleness (writes made during the outage wait in their writers'
	// outboxes and are delivered, or caught up from the log, when Redis
	// returns). Reads served past MaxStaleness are counted
	// (Stats.Invalidation.OutageReads). It never applies while Redis is
	// reachable but the subscription is not proven (a half-open link, a
	// slow subscriber): the strict bound holds there. When Redis returns the
	// node catches up or clears before it serves normally. Default 0 (off);
	// when set, at least MaxStaleness. In files: "30s".
	OutageStaleness time.Duration `json:"outageStaleness" yaml:"outageStaleness"`
	// GapStrategy says what a node does when it may have missed messages
	// (reconnect, sequence gap, unreadable message) and cannot catch up
	// from the driver's replay log: "clear" (default) drops the local
	// cache, "none" keeps it. A catch-up that succeeds never clears.
	GapStrategy string `json:"gapStrategy" yaml:"gapStrategy"`
	// RetryBackoffMin is the first delay before a failed publish is retried.
	// Default 10ms.
	RetryBackoffMin time.Duration `json:"retryBackoffMin" yaml:"retryBackoffMin"`
	// RetryBackoffMax caps the doubling retry delay. Default 1s.
	RetryBackoffMax time.Duration `json:"retryBackoffMax" yaml:"retryBackoffMax"`
	// MaxMessageBytes is the size below which batches of keys are split into
	// messages. Default 65536; at least 1024, at most 1 MiB (what receivers
	// decode).
	MaxMessageBytes int `json:"maxMessageBytes" yaml:"maxMessageBytes"`
	// FlushTimeout bounds how long Close waits for queued broadcasts to
	// leave. Default 2s.
	FlushTimeout time.Duration `json:"flushTimeout" yaml:"flushTimeout"`
	// OutboxMaxKeys bounds the distinct keys waiting to be broadcast (while
	// the bus is down they pile up; 2M keys once held 172 MB). Past it, the
	// waiting keys collapse into one Clear of every peer, counted in
	// Stats.Invalidation.OutboxOverflows and logged at warn level: peers
	// drop their whole caches once instead of receiving every key. Default
	// 100000 (about 10 MB at 50-byte keys).
	OutboxMaxKeys int `json:"outboxMaxKeys" yaml:"outboxMaxKeys"`
	// OutboxMaxBytes bounds the summed length of the keys waiting to be
	// broadcast, as OutboxMaxKeys bounds their number, with the same
	// collapse into one Clear. Default 16 MiB (16777216).
	OutboxMaxBytes int `json:"outboxMaxBytes" yaml:"outboxMaxBytes"`
}

// RedisInvalidationConfig is the typed configuration of the Redis driver.
// The same keys (capitalised as the Go fields) are accepted in DriverConfig.
type RedisInvalidationConfig struct {
	Address     string        `json:"address" yaml:"address"`         // Redis server address (e.g., "localhost:6379"); default "localhost:6379"
	Password    string        `json:"password" yaml:"password"`       // Redis password (optional)
	DB          int           `json:"db" yaml:"db"`                   // Redis database number
	Channel     string        `json:"channel" yaml:"channel"`         // Pub/Sub channel name (optional, defaults to "invacache:invalidation")
	PoolSize    int           `json:"poolSize" yaml:"poolSize"`       // Connection pool size (optional, defaults to 10)
	MaxRetries  int           `json:"maxRetries" yaml:"maxRetries"`   // Maximum retry attempts (optional, defaults to 3)
	DialTimeout time.Duration `json:"dialTimeout" yaml:"dialTimeout"` // Connection timeout (optional, defaults to 5s)

	// Username is the ACL user (Redis 6+). Empty means the default user.
	Username string `json:"username,omitempty" yaml:"username,omitempty"`
	// TLS enables TLS when non-nil and Enabled.
	TLS *TLSConfig `json:"tls,omitempty" yaml:"tls,omitempty"`
	// Addresses lists cluster seed nodes, or sentinels when MasterName is
	// set. When non-empty, Address is ignored.
	Addresses []string `json:"addresses,omitempty" yaml:"addresses,omitempty"`
	// MasterName selects Sentinel mode with Addresses as the sentinels.
	MasterName string `json:"masterName,omitempty" yaml:"masterName,omitempty"`
	// ShardedPubSub uses SPUBLISH/SSUBSCRIBE (Redis 7) on a cluster.
	ShardedPubSub bool `json:"shardedPubSub,omitempty" yaml:"shardedPubSub,omitempty"`
	// ReplayWindow is how long the driver's replay log (a Redis Stream next
	// to the channel) keeps an entry: a node away for less catches up
	// instead of clearing. Default 1m, between 1s and 24h. In files: "1m".
	ReplayWindow time.Duration `json:"replayWindow,omitempty" yaml:"replayWindow,omitempty"`
	// DisableReplay turns the replay log off: plain PUBLISH, and every gap
	// clears the node's cache. Default false.
	DisableReplay bool `json:"disableReplay,omitempty" yaml:"disableReplay,omitempty"`
	// MaxLogBytes caps the replay log's memory in Redis, whatever
	// ReplayWindow says: past it the oldest entries are trimmed (a node
	// away beyond them clears). Default 128 MiB (134217728), between 64 KiB
	// and 64 GiB; the sizing formula is in the Redis driver's docs.
	MaxLogBytes int64 `json:"maxLogBytes,omitempty" yaml:"maxLogBytes,omitempty"`
}

// TLSConfig configures TLS for the Redis driver.
type TLSConfig struct {
	Enabled            bool   `json:"enabled" yaml:"enabled"`
	CAFile             string `json:"caFile,omitempty" yaml:"caFile,omitempty"`
	CertFile           string `json:"certFile,omitempty" yaml:"certFile,omitempty"`
	KeyFile            string `json:"keyFile,omitempty" yaml:"keyFile,omitempty"`
	ServerName         string `json:"serverName,omitempty" yaml:"serverName,omitempty"`
	InsecureSkipVerify bool   `json:"insecureSkipVerify,omitempty" yaml:"insecureSkipVerify,omitempty"`
}
