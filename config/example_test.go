package config_test

import (
	"errors"
	"fmt"
	"strings"

	"github.com/halilbulentorhon/invacache-go/config"
)

// A configuration file in YAML (JSON works the same way). Keys are the
// structs' json/yaml tags; durations are strings.
func ExampleParse() {
	cfg, err := config.Parse([]byte(`
backend:
  inMemory:
    capacity: 50000
    ttl: 10m
invalidation:
  type: redis
  maxStaleness: 2s
  redis:
    address: redis.internal:6379
    channel: myapp:invalidation
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.Backend.InMemory.Capacity, cfg.Invalidation.MaxStaleness, cfg.Invalidation.Redis.Address)
	// Output: 50000 2s redis.internal:6379
}

// A misspelt key is an error that names its path and the closest known key.
func ExampleParse_typo() {
	_, err := config.Parse([]byte(`{"invalidation": {"type": "redis", "redis": {"adress": "h:6379"}}}`))
	fmt.Println(errors.Is(err, config.ErrInvalidConfig))
	msg, _, _ := strings.Cut(err.Error(), " (known:") // the message goes on to list every known key
	fmt.Println(msg)
	// Output:
	// true
	// config: invalidation.redis.adress: unknown key (did you mean "address"?)
}

// Resolve fills the defaults: what a cache built from the configuration
// will use.
func ExampleResolve() {
	eff, err := config.Resolve(config.InvaCacheConfig{
		Invalidation: &config.InvalidationConfig{Type: "redis"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	inv := eff.Invalidation
	fmt.Println(eff.Backend.InMemory.Capacity, inv.MaxStaleness, inv.GapStrategy, inv.FlushTimeout)
	// Output: 10000 3s clear 2s
}
