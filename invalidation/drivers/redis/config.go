package redis

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"sort"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/halilbulentorhon/invacache-go/config"
	suggest_ "github.com/halilbulentorhon/invacache-go/internal/suggest"
)

// Defaults applied where a setting is zero (the seed README's defaults).
const (
	DefaultAddress     = "localhost:6379"
	DefaultChannel     = "invacache:invalidation"
	DefaultPoolSize    = 10
	DefaultMaxRetries  = 3
	DefaultDialTimeout = 5 * time.Second
)

// Bounds of the numeric settings; a value outside them is an
// ErrInvalidConfig naming the key.
const (
	// MaxPoolSize bounds PoolSize: the pool only publishes, and go-redis
	// allocates (and pre-fills a semaphore of) PoolSize slots up front.
	MaxPoolSize = 1000
	// MaxMaxRetries bounds MaxRetries (-1 means no retries): the engine
	// retries failed publishes itself, with backoff, for as long as it
	// lives.
	MaxMaxRetries = 100
	// MaxDB bounds DB (Redis numbers its databases with an int).
	MaxDB = math.MaxInt32
	// MinDialTimeout and MaxDialTimeout bound DialTimeout, which is also
	// how long NewCache waits for the first link.
	MinDialTimeout = time.Millisecond
	MaxDialTimeout = time.Minute
)

// mapKeys lists the DriverConfig keys by their lower-cased spelling. Keys are
// matched case-insensitively, so both the Go field names ("PoolSize") and the
// JSON tags ("poolSize") work.
var mapKeys = map[string]struct {
	name string // canonical spelling, used in error messages
	set  func(c *config.RedisInvalidationConfig, p *parsed, v any) error
}{
	"address": {"Address", func(c *config.RedisInvalidationConfig, _ *parsed, v any) (err error) {
		c.Address, err = asString(v)
		return
	}},
	"password": {"Password", func(c *config.RedisInvalidationConfig, _ *parsed, v any) (err error) {
		c.Password, err = asString(v)
		return
	}},
	"db": {"DB", func(c *config.RedisInvalidationConfig, _ *parsed, v any) (err error) { c.DB, err = asInt(v); return }},
	"channel": {"Channel", func(c *config.RedisInvalidationConfig, _ *parsed, v any) (err error) {
		c.Channel, err = asString(v)
		return
	}},
	"poolsize": {"PoolSize", func(c *config.RedisInvalidationConfig, _ *parsed, v any) (err error) {
		c.PoolSize, err = asInt(v)
		return
	}},
	"maxretries": {"MaxRetries", func(c *config.RedisInvalidationConfig, _ *parsed, v any) (err error) {
		c.MaxRetries, err = asInt(v)
		return
	}},
	"dialtimeout": {"DialTimeout", func(c *config.RedisInvalidationConfig, _ *parsed, v any) (err error) {
		c.DialTimeout, err = asDuration(v)
		return
	}},
	"username": {"Username", func(c *config.RedisInvalidationConfig, _ *parsed, v any) (err error) {
		c.Username, err = asString(v)
		return
	}},
	"tls": {"TLS", func(c *config.RedisInvalidationConfig, _ *parsed, v any) (err error) { c.TLS, err = asTLS(v); return }},
	"addresses": {"Addresses", func(c *config.RedisInvalidationConfig, _ *parsed, v any) (err error) {
		c.Addresses, err = asStrings(v)
		return
	}},
	"mastername": {"MasterName", func(c *config.RedisInvalidationConfig, _ *parsed, v any) (err error) {
		c.MasterName, err = asString(v)
		return
	}},
	"shardedpubsub": {"ShardedPubSub", func(c *config.RedisInvalidationConfig, _ *parsed, v any) (err error) {
		c.ShardedPubSub, err = asBool(v)
		return
	}},
	"client": {"Client", func(_ *config.RedisInvalidationConfig, p *parsed, v any) (err error) {
		p.client, err = asClient(v)
		return
	}},
}

// tlsKeys lists the keys of the nested "TLS" map, lower-cased.
var tlsKeys = map[string]struct {
	name string
	set  func(t *config.TLSConfig, v any) error
}{
	"enabled":            {"Enabled", func(t *config.TLSConfig, v any) (err error) { t.Enabled, err = asBool(v); return }},
	"cafile":             {"CAFile", func(t *config.TLSConfig, v any) (err error) { t.CAFile, err = asString(v); return }},
	"certfile":           {"CertFile", func(t *config.TLSConfig, v any) (err error) { t.CertFile, err = asString(v); return }},
	"keyfile":            {"KeyFile", func(t *config.TLSConfig, v any) (err error) { t.KeyFile, err = asString(v); return }},
	"servername":         {"ServerName", func(t *config.TLSConfig, v any) (err error) { t.ServerName, err = asString(v); return }},
	"insecureskipverify": {"InsecureSkipVerify", func(t *config.TLSConfig, v any) (err error) { t.InsecureSkipVerify, err = asBool(v); return }},
}

// parsed is a DriverConfig map turned into the typed configuration plus the
// settings only the map form carries.
type parsed struct {
	cfg    config.RedisInvalidationConfig
	client goredis.UniversalClient // "Client": a caller-owned client, or nil
}

// parseMap reads InvalidationConfig.DriverConfig. A nil value for a key means
// "not set" (JSON null).
func parseMap(m map[string]any) (parsed, error) {
	var p parsed
	seen := make(map[string]string, len(m)) // lower-cased key → spelling used
	for _, k := range sortedKeys(m) {
		v := m[k]
		lk := strings.ToLower(k)
		spec, ok := mapKeys[lk]
		if !ok {
			return parsed{}, invalidf(k, "unknown key%s (accepted: %s)", suggest(k, keyNames()), strings.Join(keyNames(), ", "))
		}
		if prev, dup := seen[lk]; dup {
			return parsed{}, invalidf(k, "given twice (also as %q)", prev)
		}
		seen[lk] = k
		if v == nil {
			continue
		}
		if err := spec.set(&p.cfg, &p, v); err != nil {
			return parsed{}, invalidf(k, "%v", err)
		}
	}
	return p, nil
}

// resolve applies defaults and validates; it returns the completed copy.
// Errors name the field and wrap config.ErrInvalidConfig.
func resolve(c config.RedisInvalidationConfig) (config.RedisInvalidationConfig, error) {
	if c.Address == "" {
		c.Address = DefaultAddress
	}
	if c.Channel == "" {
		c.Channel = DefaultChannel
	}
	if c.PoolSize == 0 {
		c.PoolSize = DefaultPoolSize
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = DefaultMaxRetries
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.Addresses != nil {
		c.Addresses = append([]string(nil), c.Addresses...)
	}
	if c.TLS != nil {
		t := *c.TLS
		c.TLS = &t
	}
	switch {
	case len(c.Addresses) == 0:
		if err := checkAddr(c.Address); err != nil {
			return c, invalidf("Address", "%v", err)
		}
	default:
		for i, a := range c.Addresses {
			if err := checkAddr(a); err != nil {
				return c, invalidf(fmt.Sprintf("Addresses[%d]", i), "%v", err)
			}
		}
	}
	if c.DB < 0 || c.DB > MaxDB {
		return c, invalidf("DB", "must be between 0 and %d, got %d", MaxDB, c.DB)
	}
	if c.DB != 0 && len(c.Addresses) > 0 && c.MasterName == "" {
		return c, invalidf("DB", "a Redis Cluster (Addresses without MasterName) has only database 0, got %d", c.DB)
	}
	if c.PoolSize < 1 || c.PoolSize > MaxPoolSize {
		return c, invalidf("PoolSize", "must be between 1 and %d (0 means %d), got %d", MaxPoolSize, DefaultPoolSize, c.PoolSize)
	}
	if c.MaxRetries < -1 || c.MaxRetries > MaxMaxRetries {
		return c, invalidf("MaxRetries", "must be between -1 (no retries) and %d (0 means %d), got %d", MaxMaxRetries, DefaultMaxRetries, c.MaxRetries)
	}
	if c.DialTimeout < MinDialTimeout || c.DialTimeout > MaxDialTimeout {
		return c, invalidf("DialTimeout", "must be between %v and %v (0 means %v), got %v", MinDialTimeout, MaxDialTimeout, DefaultDialTimeout, c.DialTimeout)
	}
	if strings.TrimSpace(c.Channel) == "" {
		return c, invalidf("Channel", "must not be blank, got %q", c.Channel)
	}
	if c.MasterName != "" && len(c.Addresses) == 0 {
		return c, invalidf("MasterName", "Sentinel mode needs the sentinel addresses in Addresses")
	}
	if t := c.TLS; t != nil && t.Enabled && (t.CertFile == "") != (t.KeyFile == "") {
		return c, invalidf("TLS", "CertFile and KeyFile must be given together")
	}
	return c, nil
}

func checkAddr(a string) error {
	if a == "" {
		return fmt.Errorf("empty address")
	}
	if _, _, err := net.SplitHostPort(a); err != nil {
		return fmt.Errorf("%q is not host:port: %v", a, err)
	}
	return nil
}

// invalidf builds a configuration error naming the field or key.
func invalidf(field, format string, args ...any) error {
	return fmt.Errorf("redis: %s: %s: %w", field, fmt.Sprintf(format, args...), config.ErrInvalidConfig)
}

func sortedKeys(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func keyNames() []string {
	names := make([]string, 0, len(mapKeys))
	for _, s := range mapKeys {
		names = append(names, s.name)
	}
	sort.Strings(names)
	return names
}

// suggest returns ` (did you mean "X"?)` for a near miss of a known name.
func suggest(key string, names []string) string { return suggest_.DidYouMean(key, names) }

func asString(v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("want a string, got %T", v)
	}
	return s, nil
}

func asBool(v any) (bool, error) {
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("want a bool, got %T", v)
	}
	return b, nil
}

// asInt accepts every Go integer kind, a whole float (JSON numbers decode as
// float64) and json.Number.
func asInt(v any) (int, error) {
	i, err := asInt64(v)
	if err != nil {
		return 0, err
	}
	if i < math.MinInt || i > math.MaxInt {
		return 0, fmt.Errorf("%d out of range", i)
	}
	return int(i), nil
}

func asInt64(v any) (int64, error) {
	switch x := v.(type) {
	case int:
		return int64(x), nil
	case int8:
		return int64(x), nil
	case int16:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case int64:
		return x, nil
	case uint:
		return uintToInt64(uint64(x))
	case uint8:
		return int64(x), nil
	case uint16:
		return int64(x), nil
	case uint32:
		return int64(x), nil
	case uint64:
		return uintToInt64(x)
	case float32:
		return floatToInt64(float64(x))
	case float64:
		return floatToInt64(x)
	case json.Number:
		i, err := x.Int64()
		if err != nil {
			if f, ferr := x.Float64(); ferr == nil {
				return floatToInt64(f)
			}
			return 0, fmt.Errorf("%s is not an integer", x)
		}
		return i, nil
	default:
		return 0, fmt.Errorf("want an integer, got %T", v)
	}
}

func uintToInt64(u uint64) (int64, error) {
	if u > math.MaxInt64 {
		return 0, fmt.Errorf("%d out of range", u)
	}
	return int64(u), nil
}

func floatToInt64(f float64) (int64, error) {
	if f != math.Trunc(f) || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("%v is not a whole number", f)
	}
	if f < math.MinInt64 || f >= math.MaxInt64 {
		return 0, fmt.Errorf("%v out of range", f)
	}
	return int64(f), nil
}

// asDuration accepts time.Duration, a string for time.ParseDuration ("5s"),
// or an integer number of nanoseconds in any numeric form (as time.Duration
// itself marshals to JSON).
func asDuration(v any) (time.Duration, error) {
	switch x := v.(type) {
	case time.Duration:
		return x, nil
	case string:
		return config.ParseDuration(x)
	}
	i, err := asInt64(v)
	if err != nil {
		return 0, fmt.Errorf("want a duration (time.Duration, \"5s\" or nanoseconds), got %T", v)
	}
	return time.Duration(i), nil
}

func asStrings(v any) ([]string, error) {
	switch x := v.(type) {
	case []string:
		return append([]string(nil), x...), nil
	case []any:
		out := make([]string, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("element %d: want a string, got %T", i, e)
			}
			out[i] = s
		}
		return out, nil
	default:
		return nil, fmt.Errorf("want a list of strings, got %T", v)
	}
}

// asTLS accepts a map with the config.TLSConfig fields, the struct or a
// pointer to it, or a bool (true: TLS with the system's root CAs).
func asTLS(v any) (*config.TLSConfig, error) {
	switch x := v.(type) {
	case bool:
		return &config.TLSConfig{Enabled: x}, nil
	case config.TLSConfig:
		return &x, nil
	case *config.TLSConfig:
		if x == nil {
			return nil, nil
		}
		t := *x
		return &t, nil
	case map[string]any:
		var t config.TLSConfig
		seen := map[string]string{}
		for _, k := range sortedKeys(x) {
			lk := strings.ToLower(k)
			spec, ok := tlsKeys[lk]
			if !ok {
				return nil, fmt.Errorf("unknown key %q%s (accepted: Enabled, CAFile, CertFile, KeyFile, ServerName, InsecureSkipVerify)", k, suggest(k, []string{"Enabled", "CAFile", "CertFile", "KeyFile", "ServerName", "InsecureSkipVerify"}))
			}
			if prev, dup := seen[lk]; dup {
				return nil, fmt.Errorf("key %q given twice (also as %q)", k, prev)
			}
			seen[lk] = k
			if x[k] == nil {
				continue
			}
			if err := spec.set(&t, x[k]); err != nil {
				return nil, fmt.Errorf("%s: %v", spec.name, err)
			}
		}
		return &t, nil
	default:
		return nil, fmt.Errorf("want a map of TLS settings, a config.TLSConfig or a bool, got %T", v)
	}
}

func asClient(v any) (goredis.UniversalClient, error) {
	c, ok := v.(goredis.UniversalClient)
	if !ok || c == nil {
		return nil, fmt.Errorf("want a go-redis UniversalClient (*redis.Client, *redis.ClusterClient, ...), got %T", v)
	}
	return c, nil
}
