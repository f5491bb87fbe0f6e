package option

import "time"

// OptFnc configures one Set call.
type OptFnc func(*SetConfig)

// SetConfig is what the Set options produce.
type SetConfig struct {
	// TTL is the entry's time to live; zero means the cache's default TTL.
	TTL time.Duration
	// NoExpiration makes the entry live until it is deleted or evicted,
	// whatever the default TTL.
	NoExpiration bool
	// PublishInvalidation broadcasts the key so that every other node drops
	// its copy.
	PublishInvalidation bool
}

// WithTTL sets the entry's time to live. A zero TTL means the cache's default;
// a negative TTL is rejected by Set.
func WithTTL(ttl time.Duration) OptFnc {
	return func(cfg *SetConfig) {
		cfg.TTL = ttl
		cfg.NoExpiration = false
	}
}

// WithNoExpiration makes the entry never expire (it can still be evicted).
func WithNoExpiration() OptFnc {
	return func(cfg *SetConfig) {
		cfg.TTL = 0
		cfg.NoExpiration = true
	}
}

// WithInvalidation broadcasts the write: every other node drops its copy of
// the key, while the writer keeps the new value.
func WithInvalidation() OptFnc {
	return func(cfg *SetConfig) {
		cfg.PublishInvalidation = true
	}
}

// ApplyOptions folds options into a SetConfig. Nil options are skipped.
func ApplyOptions(options []OptFnc) SetConfig {
	var cfg SetConfig
	for _, opt := range options {
		if opt != nil {
			opt(&cfg)
		}
	}
	return cfg
}
