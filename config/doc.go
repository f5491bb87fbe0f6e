// Package config holds the configuration structs of InvaCache-Go: the
// seed's InvaCacheConfig, BackendConfig, InMemoryConfig, InvalidationConfig
// and RedisInvalidationConfig, with their defaults. They decode from JSON
// (or YAML converted to JSON) with durations written as "5s" or as
// nanoseconds. Validation happens in invacache.NewCache, which copies the
// configuration, fills defaults and names the field of every invalid value.
package config
