package redis_test

import (
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
	"github.com/halilbulentorhon/invacache-go/internal/redisserver"
)

// The seed README's samples, verbatim except for the address (tests run
// their own redis-server; the shared one on :6379 is not theirs to use).

func seedUsage(addr string) config.InvaCacheConfig {
	return config.InvaCacheConfig{
		BackendName: "in-memory",
		Backend: &config.BackendConfig{
			InMemory: &config.InMemoryConfig{
				ShardCount: 16,
				Capacity:   10000,
			},
		},
		Invalidation: &config.InvalidationConfig{
			Type: "redis",
			DriverConfig: map[string]any{
				"Address":     addr,
				"Password":    "",
				"DB":          0,
				"Channel":     "invacache:invalidation",
				"PoolSize":    10,
				"MaxRetries":  3,
				"DialTimeout": 5 * time.Second,
			},
		},
	}
}

func seedBasic(addr string) *config.RedisInvalidationConfig {
	return &config.RedisInvalidationConfig{
		Address: addr,
		DB:      0,
	}
}

func seedProduction(addr string) *config.RedisInvalidationConfig {
	return &config.RedisInvalidationConfig{
		Address:     addr,
		Password:    "secure-password",
		DB:          1,
		Channel:     "myapp:cache:invalidation",
		PoolSize:    20,
		MaxRetries:  5,
		DialTimeout: 10 * time.Second,
	}
}

func seedCluster(addr string) *config.RedisInvalidationConfig {
	return &config.RedisInvalidationConfig{
		Address:     addr,
		Password:    "cluster-password",
		DB:          0,
		PoolSize:    50,
		MaxRetries:  3,
		DialTimeout: 5 * time.Second,
	}
}

func TestSeedSamples(t *testing.T) {
	leakcheck.Check(t)
	typed := func(r *config.RedisInvalidationConfig) config.InvaCacheConfig {
		return config.InvaCacheConfig{Invalidation: &config.InvalidationConfig{Type: "redis", Redis: r}}
	}
	tests := []struct {
		name     string
		password string
		cfg      func(addr string) config.InvaCacheConfig
	}{
		{"usage (map form)", "", seedUsage},
		{"basic", "", func(a string) config.InvaCacheConfig { return typed(seedBasic(a)) }},
		{"production", "secure-password", func(a string) config.InvaCacheConfig { return typed(seedProduction(a)) }},
		{"cluster endpoint", "cluster-password", func(a string) config.InvaCacheConfig { return typed(seedCluster(a)) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := redisserver.StartT(t, redisserver.Options{Password: tc.password})
			mk := func() invacache.Cache[string] {
				c, err := invacache.NewCache[string](tc.cfg(srv.Addr()))
				if err != nil {
					t.Fatalf("NewCache: %v", err)
				}
				t.Cleanup(func() { _ = c.Close() })
				return c
			}
			checkPair(t, mk(), mk())
		})
	}
}
