package invacache

import (
	"fmt"
	"log/slog"
	"math/bits"
	"time"

	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/engine"
	"github.com/halilbulentorhon/invacache-go/invalidation"
)

// settings is a configuration after defaults and validation. NewCache builds
// it from a copy, so the caller's config is never modified.
type settings struct {
	shardCount    int
	capacity      int
	defaultTTL    time.Duration
	sweepInterval time.Duration
	logger        *slog.Logger
	inval         *invalSettings // nil: a local cache
}

type invalSettings struct {
	driver          invalidation.Driver // handed in by the user; nil means open spec
	spec            invalidation.Spec
	maxStaleness    time.Duration // 0: bound disabled
	gapStrategy     string
	backoffMin      time.Duration
	backoffMax      time.Duration
	maxMessageBytes int
	flushTimeout    time.Duration
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("invacache: "+format+": %w", append(args, ErrInvalidConfig)...)
}

func resolve(cfg config.InvaCacheConfig) (settings, error) {
	s := settings{logger: cfg.Logger}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	switch cfg.BackendName {
	case "", config.BackendInMemory:
	default:
		return s, invalidf("BackendName %q is unknown (want %q)", cfg.BackendName, config.BackendInMemory)
	}
	var mem config.InMemoryConfig
	if cfg.Backend != nil && cfg.Backend.InMemory != nil {
		mem = *cfg.Backend.InMemory
	}
	if err := resolveStore(&s, mem); err != nil {
		return s, err
	}
	if cfg.Invalidation != nil {
		inv, err := resolveInvalidation(*cfg.Invalidation, s.logger)
		if err != nil {
			return s, err
		}
		s.inval = inv
	}
	return s, nil
}

func resolveStore(s *settings, mem config.InMemoryConfig) error {
	switch {
	case mem.Capacity < 0:
		return invalidf("Backend.InMemory.Capacity (%d) is negative", mem.Capacity)
	case mem.ShardCount < 0:
		return invalidf("Backend.InMemory.ShardCount (%d) is negative", mem.ShardCount)
	case mem.SweeperInterval < 0:
		return invalidf("Backend.InMemory.SweeperInterval (%s) is negative", mem.SweeperInterval)
	}
	s.capacity = mem.Capacity
	if s.capacity == 0 {
		s.capacity = config.DefaultCapacity
	}
	s.shardCount = mem.ShardCount
	if s.shardCount == 0 {
		// The default never exceeds the capacity: a small cache gets fewer
		// shards instead of an error about a field the user did not set.
		s.shardCount = min(config.DefaultShardCount, 1<<(bits.Len(uint(s.capacity))-1))
	}
	if s.capacity < s.shardCount {
		return invalidf("Backend.InMemory.Capacity (%d) is below ShardCount (%d)", s.capacity, s.shardCount)
	}
	s.sweepInterval = mem.SweeperInterval
	if s.sweepInterval == 0 {
		s.sweepInterval = config.DefaultSweeperInterval
	}
	if mem.Ttl != "" {
		ttl, err := time.ParseDuration(mem.Ttl)
		if err != nil {
			return invalidf("Backend.InMemory.Ttl %q is not a duration (e.g. \"10m\")", mem.Ttl)
		}
		if ttl < 0 {
			return invalidf("Backend.InMemory.Ttl (%s) is negative", mem.Ttl)
		}
		s.defaultTTL = ttl
	}
	return nil
}

func resolveInvalidation(ic config.InvalidationConfig, logger *slog.Logger) (*invalSettings, error) {
	inv := &invalSettings{
		driver:          ic.Driver,
		maxStaleness:    ic.MaxStaleness,
		gapStrategy:     ic.GapStrategy,
		backoffMin:      ic.RetryBackoffMin,
		backoffMax:      ic.RetryBackoffMax,
		maxMessageBytes: ic.MaxMessageBytes,
		flushTimeout:    ic.FlushTimeout,
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"MaxStaleness", ic.MaxStaleness},
		{"RetryBackoffMin", ic.RetryBackoffMin},
		{"RetryBackoffMax", ic.RetryBackoffMax},
		{"FlushTimeout", ic.FlushTimeout},
	} {
		if d.v < 0 {
			return nil, invalidf("Invalidation.%s (%s) is negative", d.name, d.v)
		}
	}
	switch {
	case ic.DisableMaxStaleness:
		inv.maxStaleness = 0
	case inv.maxStaleness == 0:
		inv.maxStaleness = config.DefaultMaxStaleness
	case inv.maxStaleness < engine.MinMaxStaleness:
		return nil, invalidf("Invalidation.MaxStaleness (%s) is below the minimum %s (four liveness PINGs of at least %s must fit in it)", ic.MaxStaleness, engine.MinMaxStaleness, engine.MinPingInterval)
	}
	switch inv.gapStrategy {
	case "":
		inv.gapStrategy = config.GapClear
	case config.GapClear, config.GapNone:
	default:
		return nil, invalidf("Invalidation.GapStrategy %q is unknown (want %q or %q)", ic.GapStrategy, config.GapClear, config.GapNone)
	}
	if inv.backoffMin == 0 {
		inv.backoffMin = config.DefaultRetryBackoffMin
	}
	if inv.backoffMax == 0 {
		inv.backoffMax = max(config.DefaultRetryBackoffMax, inv.backoffMin)
	}
	if inv.backoffMax < inv.backoffMin {
		return nil, invalidf("Invalidation.RetryBackoffMax (%s) is below RetryBackoffMin (%s)", inv.backoffMax, inv.backoffMin)
	}
	switch {
	case ic.MaxMessageBytes < 0:
		return nil, invalidf("Invalidation.MaxMessageBytes (%d) is negative", ic.MaxMessageBytes)
	case ic.MaxMessageBytes == 0:
		inv.maxMessageBytes = config.DefaultMaxMessageBytes
	case ic.MaxMessageBytes < 1024:
		return nil, invalidf("Invalidation.MaxMessageBytes (%d) is below 1024", ic.MaxMessageBytes)
	}
	if inv.flushTimeout == 0 {
		inv.flushTimeout = config.DefaultFlushTimeout
	}
	if inv.driver != nil {
		return inv, nil
	}

	typ := ic.Type
	if typ == "" && ic.Redis != nil {
		typ = "redis"
	}
	if typ == "" {
		return nil, invalidf("Invalidation.Type is empty (set Type, e.g. \"redis\", or Driver)")
	}
	inv.spec = invalidation.Spec{Type: typ, Options: ic.DriverConfig, Logger: logger}
	if ic.Redis != nil {
		if typ != "redis" {
			return nil, invalidf("Invalidation.Redis is set but Type is %q", typ)
		}
		if len(ic.DriverConfig) > 0 {
			return nil, invalidf("Invalidation.Redis and Invalidation.DriverConfig are both set (use one form)")
		}
		r := *ic.Redis // the driver gets a copy; the caller's struct stays as it was
		inv.spec.Typed = &r
	}
	return inv, nil
}
