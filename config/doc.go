// Package config holds the configuration of a cache: InvaCacheConfig,
// BackendConfig, InMemoryConfig, InvalidationConfig and
// RedisInvalidationConfig. Every zero value means the default, and each
// field's doc says its default.
//
// # Building a configuration
//
// In Go, fill the structs. NewCache copies the configuration and never
// modifies the caller's. Resolve runs the checks NewCache runs and returns
// the effective configuration (every default filled in); every invalid value
// is an error naming the field and wrapping ErrInvalidConfig, never a panic.
//
// The invalidation driver's own settings come in one of three forms, which
// the driver decodes and checks the same way:
//
//   - typed: Invalidation.Redis, a RedisInvalidationConfig (Type "redis" is
//     implied);
//   - by key: Invalidation.Type plus the Invalidation.DriverConfig map, whose
//     keys are the driver's field names or their json names ("PoolSize" or
//     "poolSize"); durations are a time.Duration or a string such as "5s";
//   - a ready driver: Invalidation.Driver, for example the Redis driver's
//     redis.New(redis.Config{...}), which also takes an existing go-redis
//     client, a cluster, Sentinel and TLS.
//
// # Files
//
// Parse reads a JSON or YAML document (JSON when it starts with "{"). Its
// keys are the structs' json/yaml tags. It is strict at every depth: an
// unknown key is an error naming its path and the closest known key
// ("config: invalidation.redis.adress: unknown key (did you mean
// "address"?)"), a duration is a string ("5s", "1m") and a bare number for
// one is an error, a wrong type or a repeated key names the key. It then
// checks the values as NewCache would, the driver's settings included (the
// driver must be imported, as for NewCache), so a file that parses opens.
// encoding/json on these structs is not a supported way to read a file.
//
// A complete file, every key set to its default ("addresses" would select a
// cluster, "masterName" Sentinel):
//
//	{
//	  "backendName": "in-memory",
//	  "backend": {
//	    "inMemory": {"shardCount": 16, "capacity": 10000, "sweeperInterval": "1s", "ttl": "10m"}
//	  },
//	  "invalidation": {
//	    "type": "redis",
//	    "redis": {
//	      "address": "127.0.0.1:6379",
//	      "password": "",
//	      "db": 0,
//	      "channel": "myapp:invalidation",
//	      "poolSize": 10,
//	      "maxRetries": 3,
//	      "dialTimeout": "5s",
//	      "username": "",
//	      "tls": {"enabled": false, "caFile": "", "certFile": "", "keyFile": "", "serverName": "", "insecureSkipVerify": false},
//	      "addresses": [],
//	      "masterName": "",
//	      "shardedPubSub": false,
//	      "replayWindow": "1m",
//	      "disableReplay": false,
//	      "maxLogBytes": 134217728
//	    },
//	    "maxStaleness": "3s",
//	    "disableMaxStaleness": false,
//	    "outageStaleness": "0s",
//	    "gapStrategy": "clear",
//	    "retryBackoffMin": "10ms",
//	    "retryBackoffMax": "1s",
//	    "maxMessageBytes": 65536,
//	    "flushTimeout": "2s",
//	    "outboxMaxKeys": 100000,
//	    "outboxMaxBytes": 16777216
//	  }
//	}
//
// The same in YAML:
//
//	backendName: in-memory
//	backend:
//	  inMemory:
//	    shardCount: 16
//	    capacity: 10000
//	    sweeperInterval: 1s
//	    ttl: 10m
//	invalidation:
//	  type: redis
//	  redis:
//	    address: 127.0.0.1:6379
//	    password: ""
//	    db: 0
//	    channel: myapp:invalidation
//	    poolSize: 10
//	    maxRetries: 3
//	    dialTimeout: 5s
//	    username: ""
//	    tls:
//	      enabled: false
//	      caFile: ""
//	      certFile: ""
//	      keyFile: ""
//	      serverName: ""
//	      insecureSkipVerify: false
//	    addresses: []
//	    masterName: ""
//	    shardedPubSub: false
//	    replayWindow: 1m
//	    disableReplay: false
//	    maxLogBytes: 134217728
//	  maxStaleness: 3s
//	  disableMaxStaleness: false
//	  outageStaleness: 0s
//	  gapStrategy: clear
//	  retryBackoffMin: 10ms
//	  retryBackoffMax: 1s
//	  maxMessageBytes: 65536
//	  flushTimeout: 2s
//	  outboxMaxKeys: 100000
//	  outboxMaxBytes: 16777216
package config
