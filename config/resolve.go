package config

import (
	"fmt"
	"math/bits"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/halilbulentorhon/invacache-go/internal/suggest"
	"github.com/halilbulentorhon/invacache-go/internal/wire"
	"github.com/halilbulentorhon/invacache-go/invalidation"
)

// Resolve returns a copy of cfg with every default filled in, or an error
// naming the first invalid field. It is the one place the options of this
// package are checked: NewCache and Parse call it, and a program may call
// it to check a configuration or log the effective one. The caller's cfg
// (and the structs it points to) is never modified.
//
// In the result, Backend.InMemory is set with ShardCount, Capacity and
// SweeperInterval filled in; Invalidation (when set) has every duration and
// size filled in, MaxStaleness 0 only when DisableMaxStaleness is true, and
// GapStrategy set. The driver's own settings are left to the driver, which
// checks them when the cache is built (and Parse builds it to check them);
// the typed Redis settings appear as the equivalent DriverConfig map (keys
// the field names, zero fields left out), the one form drivers receive.
// Type must name a registered driver unless Driver is set.
func Resolve(cfg InvaCacheConfig) (InvaCacheConfig, error) {
	switch cfg.BackendName {
	case "", BackendInMemory:
	default:
		return cfg, invalidField("BackendName", "%q is unknown (want %q)", cfg.BackendName, BackendInMemory)
	}
	var mem InMemoryConfig
	if cfg.Backend != nil && cfg.Backend.InMemory != nil {
		mem = *cfg.Backend.InMemory
	}
	if err := resolveInMemory(&mem); err != nil {
		return cfg, err
	}
	out := cfg
	out.Backend = &BackendConfig{InMemory: &mem}
	if cfg.Invalidation != nil {
		ic := *cfg.Invalidation
		if err := ic.resolve(); err != nil {
			return cfg, err
		}
		out.Invalidation = &ic
	}
	return out, nil
}

func invalidField(field, format string, args ...any) error {
	return fmt.Errorf("config: %s %s: %w", field, fmt.Sprintf(format, args...), ErrInvalidConfig)
}

func resolveInMemory(mem *InMemoryConfig) error {
	switch {
	case mem.Capacity < 0:
		return invalidField("Backend.InMemory.Capacity", "(%d) is negative", mem.Capacity)
	case mem.ShardCount < 0:
		return invalidField("Backend.InMemory.ShardCount", "(%d) is negative", mem.ShardCount)
	case mem.SweeperInterval < 0:
		return invalidField("Backend.InMemory.SweeperInterval", "(%s) is negative", mem.SweeperInterval)
	}
	if mem.Capacity == 0 {
		mem.Capacity = DefaultCapacity
	}
	if mem.ShardCount == 0 {
		// The default never exceeds the capacity: a small cache gets fewer
		// shards instead of an error about a field the user did not set.
		mem.ShardCount = min(DefaultShardCount, 1<<(bits.Len(uint(mem.Capacity))-1))
	}
	if mem.Capacity < mem.ShardCount {
		return invalidField("Backend.InMemory.Capacity", "(%d) is below ShardCount (%d)", mem.Capacity, mem.ShardCount)
	}
	if mem.SweeperInterval == 0 {
		mem.SweeperInterval = DefaultSweeperInterval
	}
	if mem.Ttl != "" {
		ttl, err := time.ParseDuration(mem.Ttl)
		if err != nil {
			return invalidField("Backend.InMemory.Ttl", "%q is not a duration (e.g. \"10m\")", mem.Ttl)
		}
		if ttl < 0 {
			return invalidField("Backend.InMemory.Ttl", "(%s) is negative", mem.Ttl)
		}
	}
	return nil
}

// resolve checks c and fills its defaults in place (c is a copy).
func (c *InvalidationConfig) resolve() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"MaxStaleness", c.MaxStaleness},
		{"OutageStaleness", c.OutageStaleness},
		{"RetryBackoffMin", c.RetryBackoffMin},
		{"RetryBackoffMax", c.RetryBackoffMax},
		{"FlushTimeout", c.FlushTimeout},
	} {
		if d.v < 0 {
			return invalidField("Invalidation."+d.name, "(%s) is negative", d.v)
		}
	}
	switch {
	case c.DisableMaxStaleness:
		c.MaxStaleness = 0
	case c.MaxStaleness == 0:
		c.MaxStaleness = DefaultMaxStaleness
	case c.MaxStaleness < MinMaxStaleness:
		return invalidField("Invalidation.MaxStaleness", "(%s) is below the minimum %s (four liveness PINGs must fit in it)", c.MaxStaleness, MinMaxStaleness)
	}
	switch {
	case c.OutageStaleness == 0:
	case c.DisableMaxStaleness:
		return invalidField("Invalidation.OutageStaleness", "(%s) is set but DisableMaxStaleness turns every staleness bound off", c.OutageStaleness)
	case c.OutageStaleness < c.MaxStaleness:
		return invalidField("Invalidation.OutageStaleness", "(%s) is below MaxStaleness (%s): the outage bound may only be longer", c.OutageStaleness, c.MaxStaleness)
	}
	switch c.GapStrategy {
	case "":
		c.GapStrategy = GapClear
	case GapClear, GapNone:
	default:
		return invalidField("Invalidation.GapStrategy", "%q is unknown (want %q or %q)", c.GapStrategy, GapClear, GapNone)
	}
	if c.RetryBackoffMin == 0 {
		c.RetryBackoffMin = DefaultRetryBackoffMin
	}
	if c.RetryBackoffMax == 0 {
		c.RetryBackoffMax = max(DefaultRetryBackoffMax, c.RetryBackoffMin)
	}
	if c.RetryBackoffMax < c.RetryBackoffMin {
		return invalidField("Invalidation.RetryBackoffMax", "(%s) is below RetryBackoffMin (%s)", c.RetryBackoffMax, c.RetryBackoffMin)
	}
	switch {
	case c.MaxMessageBytes < 0:
		return invalidField("Invalidation.MaxMessageBytes", "(%d) is negative", c.MaxMessageBytes)
	case c.MaxMessageBytes == 0:
		c.MaxMessageBytes = DefaultMaxMessageBytes
	case c.MaxMessageBytes < minMessageBytes:
		return invalidField("Invalidation.MaxMessageBytes", "(%d) is below %d", c.MaxMessageBytes, minMessageBytes)
	case c.MaxMessageBytes > wire.MaxPayloadBytes:
		return invalidField("Invalidation.MaxMessageBytes", "(%d) is above %d, the largest message a receiver decodes", c.MaxMessageBytes, wire.MaxPayloadBytes)
	}
	if c.FlushTimeout == 0 {
		c.FlushTimeout = DefaultFlushTimeout
	}
	for _, b := range []struct {
		name string
		v    *int
		def  int
	}{
		{"OutboxMaxKeys", &c.OutboxMaxKeys, DefaultOutboxMaxKeys},
		{"OutboxMaxBytes", &c.OutboxMaxBytes, DefaultOutboxMaxBytes},
	} {
		switch {
		case *b.v < 0:
			return invalidField("Invalidation."+b.name, "(%d) is negative", *b.v)
		case *b.v == 0:
			*b.v = b.def
		}
	}
	if c.Driver != nil {
		return nil
	}
	if c.Type == "" && c.Redis != nil {
		c.Type = "redis"
	}
	if c.Type == "" {
		return invalidField("Invalidation.Type", "is empty (set Type, e.g. \"redis\", or Driver)")
	}
	if c.Redis != nil {
		if c.Type != "redis" {
			return invalidField("Invalidation.Redis", "is set but Type is %q", c.Type)
		}
		if len(c.DriverConfig) > 0 {
			return invalidField("Invalidation.Redis", "and Invalidation.DriverConfig are both set (use one form)")
		}
	}
	if names := invalidation.Registered(); !slices.Contains(names, c.Type) {
		return invalidField("Invalidation.Type", "%q is not a registered driver%s (registered: %s; did you blank-import the driver?)",
			c.Type, suggest.DidYouMean(c.Type, names), strings.Join(names, ", "))
	}
	if c.Redis != nil {
		// The typed form is the map's schema: the driver gets one form.
		c.DriverConfig, c.Redis = settingsMap(reflect.ValueOf(*c.Redis)), nil
	}
	return nil
}

// minMessageBytes is the smallest InvalidationConfig.MaxMessageBytes: a
// message must hold at least one key of a realistic size.
const minMessageBytes = 1024
