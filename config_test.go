package invacache_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/config"
)

func mem(c config.InMemoryConfig) *config.BackendConfig {
	return &config.BackendConfig{InMemory: &c}
}

func TestNewCacheRejectsInvalidConfig(t *testing.T) {
	tests := []struct {
		name      string
		cfg       config.InvaCacheConfig
		wantField string
	}{
		{"unknown backend", config.InvaCacheConfig{BackendName: "redis"}, "BackendName"},
		{"negative capacity", config.InvaCacheConfig{Backend: mem(config.InMemoryConfig{Capacity: -1})}, "Capacity"},
		{"negative shards", config.InvaCacheConfig{Backend: mem(config.InMemoryConfig{ShardCount: -4})}, "ShardCount"},
		{"capacity below shards", config.InvaCacheConfig{Backend: mem(config.InMemoryConfig{ShardCount: 16, Capacity: 8})}, "Capacity"},
		{"negative sweeper", config.InvaCacheConfig{Backend: mem(config.InMemoryConfig{SweeperInterval: -time.Second})}, "SweeperInterval"},
		{"unparsable ttl", config.InvaCacheConfig{Backend: mem(config.InMemoryConfig{Ttl: "ten minutes"})}, "Ttl"},
		{"negative ttl", config.InvaCacheConfig{Backend: mem(config.InMemoryConfig{Ttl: "-1m"})}, "Ttl"},
		{"empty invalidation type", config.InvaCacheConfig{Invalidation: &config.InvalidationConfig{}}, "Type"},
		{"unknown invalidation type", config.InvaCacheConfig{Invalidation: &config.InvalidationConfig{Type: "carrier-pigeon"}}, "Type"},
		{"negative staleness", config.InvaCacheConfig{Invalidation: &config.InvalidationConfig{Type: "memory", MaxStaleness: -1}}, "MaxStaleness"},
		{"unknown gap strategy", config.InvaCacheConfig{Invalidation: &config.InvalidationConfig{Type: "memory", GapStrategy: "ignore"}}, "GapStrategy"},
		{"backoff max below min", config.InvaCacheConfig{Invalidation: &config.InvalidationConfig{Type: "memory", RetryBackoffMin: time.Second, RetryBackoffMax: time.Millisecond}}, "RetryBackoffMax"},
		{"negative flush timeout", config.InvaCacheConfig{Invalidation: &config.InvalidationConfig{Type: "memory", FlushTimeout: -time.Second}}, "FlushTimeout"},
		{"tiny message limit", config.InvaCacheConfig{Invalidation: &config.InvalidationConfig{Type: "memory", MaxMessageBytes: 100}}, "MaxMessageBytes"},
		{"message limit above what receivers decode", config.InvaCacheConfig{Invalidation: &config.InvalidationConfig{Type: "memory", MaxMessageBytes: 2 << 20}}, "MaxMessageBytes"},
		{"typed redis with other type", config.InvaCacheConfig{Invalidation: &config.InvalidationConfig{Type: "memory", Redis: &config.RedisInvalidationConfig{}}}, "Redis"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := invacache.NewCache[string](tt.cfg)
			if err == nil {
				c.Close()
				t.Fatalf("NewCache(%+v) = nil error, want one naming %s", tt.cfg, tt.wantField)
			}
			if !errors.Is(err, invacache.ErrInvalidConfig) {
				t.Errorf("NewCache error %q: errors.Is(err, ErrInvalidConfig) = false, want true", err)
			}
			if !strings.Contains(err.Error(), tt.wantField) {
				t.Errorf("NewCache error %q does not name the field %s", err, tt.wantField)
			}
			if !strings.HasPrefix(err.Error(), "invacache: ") {
				t.Errorf("NewCache error %q does not start with the package name", err)
			}
		})
	}
}

func TestNewCacheDoesNotModifyConfig(t *testing.T) {
	cfg := config.InvaCacheConfig{Backend: mem(config.InMemoryConfig{Capacity: 100})}
	before := *cfg.Backend.InMemory
	c, err := invacache.NewCache[int](cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := *cfg.Backend.InMemory; got != before {
		t.Errorf("NewCache changed the caller's InMemoryConfig: got %+v, want %+v", got, before)
	}
	if cfg.BackendName != "" || cfg.Invalidation != nil {
		t.Errorf("NewCache changed the caller's config: %+v", cfg)
	}
}

// A JSON document goes through config.Parse (strict at every depth);
// encoding/json on the structs has no special decoding.
func TestConfigFromJSON(t *testing.T) {
	const doc = `{
	  "backendName": "in-memory",
	  "backend": {"inMemory": {"capacity": 5000, "ttl": "10m"}},
	  "invalidation": {"type": "memory", "maxStaleness": "2s", "flushTimeout": "1s"}
	}`
	cfg, err := config.Parse([]byte(doc))
	if err != nil {
		t.Fatalf("config.Parse: %v", err)
	}
	want := config.InvaCacheConfig{
		BackendName:  "in-memory",
		Backend:      mem(config.InMemoryConfig{Capacity: 5000, Ttl: "10m"}),
		Invalidation: &config.InvalidationConfig{Type: "memory", MaxStaleness: 2 * time.Second, FlushTimeout: time.Second},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("decoded config:\n got %+v\nwant %+v", cfg, want)
	}
}

// A MaxStaleness shorter than the liveness PINGs can prove gives a cache that
// serves a fraction of its reads and clears dozens of times a second: it is
// refused, naming the minimum (issue 10 item 8).
func TestMaxStalenessBelowPingRoundTripRefused(t *testing.T) {
	for _, d := range []time.Duration{time.Nanosecond, 10 * time.Millisecond, 79 * time.Millisecond} {
		_, err := invacache.NewCache[string](config.InvaCacheConfig{Invalidation: &config.InvalidationConfig{Type: "memory", MaxStaleness: d}})
		if !errors.Is(err, invacache.ErrInvalidConfig) {
			t.Fatalf("NewCache with MaxStaleness %v: err = %v, want ErrInvalidConfig", d, err)
		}
		if msg := err.Error(); !strings.Contains(msg, "MaxStaleness") || !strings.Contains(msg, "80ms") {
			t.Errorf("NewCache with MaxStaleness %v: error %q, want it to name MaxStaleness and the minimum 80ms", d, msg)
		}
	}
	c, err := invacache.NewCache[string](config.InvaCacheConfig{Invalidation: &config.InvalidationConfig{Type: "memory", MaxStaleness: 80 * time.Millisecond}})
	if err != nil {
		t.Fatalf("NewCache with MaxStaleness 80ms (the minimum): %v", err)
	}
	c.Close()
}
