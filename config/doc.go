// Package config holds the configuration of InvaCache-Go: the seed's
// InvaCacheConfig, BackendConfig, InMemoryConfig, InvalidationConfig and
// RedisInvalidationConfig, with their defaults.
//
// Build a configuration in Go, or read a file with Parse (JSON or YAML,
// strict: unknown keys, bare numbers for durations and wrong types are
// errors naming the key). Resolve checks a configuration and fills its
// defaults; NewCache calls it, so every invalid value is an error naming
// its field and wrapping ErrInvalidConfig, never a panic.
package config
