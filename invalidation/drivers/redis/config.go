package redis

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"reflect"
	"sort"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/suggest"
)

// Defaults applied where a setting is zero.
const (
	DefaultAddress     = "localhost:6379"
	DefaultChannel     = "invacache:invalidation"
	DefaultPoolSize    = 10
	DefaultMaxRetries  = 3
	DefaultDialTimeout = 5 * time.Second
	// DefaultReplayWindow is how long the replay log keeps an entry.
	DefaultReplayWindow = time.Minute
	// DefaultMaxLogBytes caps the replay log's size (see MaxLogBytes).
	DefaultMaxLogBytes = 128 << 20
)

// Bounds of the numeric settings (the Config field docs state them); a
// value outside them is an ErrInvalidConfig naming the key.
const (
	// maxPoolSize bounds PoolSize: the pool only publishes, and go-redis
	// allocates (and pre-fills a semaphore of) PoolSize slots up front.
	maxPoolSize = 1000
	// maxMaxRetries bounds MaxRetries (-1 means no retries): the engine
	// retries failed publishes itself, with backoff, for as long as it
	// lives.
	maxMaxRetries = 100
	// maxDB bounds DB (Redis numbers its databases with an int).
	maxDB = math.MaxInt32
	// minDialTimeout and maxDialTimeout bound DialTimeout, which is also
	// how long NewCache waits for the first link.
	minDialTimeout = time.Millisecond
	maxDialTimeout = time.Minute
	// minReplayWindow and maxReplayWindow bound ReplayWindow: below a
	// second a reconnect rarely catches up; past a day the log's memory is
	// bounded by logMaxEntries alone.
	minReplayWindow = time.Second
	// minMaxLogBytes and maxMaxLogBytes bound MaxLogBytes.
	minMaxLogBytes  = 64 << 10
	maxMaxLogBytes  = 64 << 30
	maxReplayWindow = 24 * time.Hour
)

// Config is the Redis driver's configuration; the driver defines it and
// checks it (New, NewClient), so a new option needs no core release. Every
// zero field means its default.
//
// A cache reaches it in one of three ways: Config given to New, whose
// driver goes in config.InvalidationConfig.Driver; the typed
// config.RedisInvalidationConfig (InvalidationConfig.Redis), whose fields
// map one to one onto Config's; or InvalidationConfig.DriverConfig
// map, whose keys are Config's field names or json tags in any case. See
// ConfigFrom.
type Config struct {
	// Address is a single Redis server, host:port. Default "localhost:6379".
	// Ignored when Addresses is set.
	Address string `json:"address" yaml:"address"`
	// Addresses lists Redis Cluster seed nodes (one is enough), or the
	// sentinels when MasterName is set.
	Addresses []string `json:"addresses,omitempty" yaml:"addresses,omitempty"`
	// MasterName selects Sentinel mode: the driver follows this master
	// through failovers, asking the sentinels in Addresses.
	MasterName string `json:"masterName,omitempty" yaml:"masterName,omitempty"`
	// Username is the ACL user (Redis 6+). Empty means the default user.
	Username string `json:"username,omitempty" yaml:"username,omitempty"`
	// Password is the AUTH password. Empty means none.
	Password string `json:"password" yaml:"password"`
	// DB is the database number of the client (Pub/Sub channels are global
	// to a server, so it does not separate applications: Channel does).
	// A cluster has only database 0. Between 0 and 2147483647.
	DB int `json:"db" yaml:"db"`
	// TLS enables TLS when non-nil and Enabled.
	TLS *TLSConfig `json:"tls,omitempty" yaml:"tls,omitempty"`
	// Channel is the Pub/Sub channel; use one per application. Default
	// "invacache:invalidation".
	Channel string `json:"channel" yaml:"channel"`
	// ShardedPubSub uses SPUBLISH/SSUBSCRIBE (Redis 7) on a cluster instead
	// of PUBLISH/SUBSCRIBE, which a cluster broadcasts to every node.
	ShardedPubSub bool `json:"shardedPubSub,omitempty" yaml:"shardedPubSub,omitempty"`
	// PoolSize is the publish connection pool size. Default 10, at most
	// 1000 (the pool only publishes, and go-redis allocates its slots up
	// front).
	PoolSize int `json:"poolSize" yaml:"poolSize"`
	// MaxRetries is go-redis's retry count per command; -1 means none. The
	// cache's outbox retries on top with backoff. Default 3, at most 100.
	MaxRetries int `json:"maxRetries" yaml:"maxRetries"`
	// DialTimeout is the connect timeout; NewCache waits at most this long
	// for the first subscription. Default 5s, between 1ms and 1m.
	DialTimeout time.Duration `json:"dialTimeout" yaml:"dialTimeout"`
	// ReplayWindow is how long the replay log keeps an entry (a Redis
	// Stream next to the channel, trimmed on the ids Redis assigns): a node
	// that lost its link for less than this catches up from the log instead
	// of clearing its cache. Default 1m, between 1s and 24h. The log also
	// never holds more than 1,000,000 entries.
	ReplayWindow time.Duration `json:"replayWindow,omitempty" yaml:"replayWindow,omitempty"`
	// MaxLogBytes caps the replay log's size: the payload bytes it holds,
	// counting 64 bytes of overhead per entry (Redis's own use is about
	// that), trimmed oldest first without O(n) work per publish; the log
	// may exceed it by a sixteenth plus one stream node. A node away for
	// longer than the log covers clears instead of catching up. Size it
	// for ReplayWindow of your peak: window seconds × messages per second
	// × (average payload + 64), where a payload is about 30 bytes plus
	// each key's length + 1 (group commit puts several keys in one
	// message); the package doc works an example. Default 128 MiB (a
	// one-minute window of about 15,000 single-key messages per second
	// with 40-byte keys), between 64 KiB and 64 GiB.
	MaxLogBytes int64 `json:"maxLogBytes,omitempty" yaml:"maxLogBytes,omitempty"`
	// DisableReplay turns the replay log off: Publish is a plain PUBLISH
	// (SPUBLISH), nothing is written to a stream, and a node clears its
	// cache on every gap. Set it when the Redis user may not run scripts or
	// stream commands (EVALSHA, EVAL, XADD, XTRIM, XINFO, XRANGE, GET, SET,
	// DEL, EXISTS on the log's keys). Default false: replay on.
	DisableReplay bool `json:"disableReplay,omitempty" yaml:"disableReplay,omitempty"`
	// Client is an existing go-redis client to use instead of connecting
	// with the settings above (of which only Channel, ShardedPubSub and
	// DialTimeout then apply). It stays the caller's: Close does not close
	// it. It should speak RESP2 (Protocol: 2), so that its subscription is a
	// "pubsub" client for Redis. It cannot be given in the DriverConfig map.
	Client goredis.UniversalClient `json:"-" yaml:"-"`
}

// TLSConfig configures TLS from files (Enabled, CAFile, CertFile and
// KeyFile together, ServerName, InsecureSkipVerify); it is the core
// config.TLSConfig, which the typed form already carries.
type TLSConfig = config.TLSConfig

// ConfigFrom returns the Redis settings an InvalidationConfig carries (its
// typed Redis field, or its DriverConfig map), decoded as NewCache decodes
// them: config.Resolve turns the typed form into the map, and the map is
// decoded strictly: keys are Config's field names or json tags in any case
// ("PoolSize", "poolSize"); an unknown key or a wrong type is an error
// naming the key; numbers may be any Go integer kind, a whole float64 or a
// json.Number; durations a time.Duration or a string ("5s"); TLS a map, a
// TLSConfig or a bool; a nil value means unset. The result is not checked
// yet: New does that.
func ConfigFrom(ic config.InvalidationConfig) (Config, error) {
	ic.Driver = nil
	if ic.Type == "" && ic.Redis == nil {
		ic.Type = TypeName
	}
	r, err := config.Resolve(config.InvaCacheConfig{Invalidation: &ic})
	if err != nil {
		return Config{}, err
	}
	return decodeConfig(r.Invalidation.DriverConfig)
}

// decodeConfig decodes a DriverConfig map (see ConfigFrom).
func decodeConfig(m map[string]any) (Config, error) {
	var c Config
	if err := decodeMap(m, reflect.ValueOf(&c).Elem(), ""); err != nil {
		return Config{}, err
	}
	return c, nil
}

// resolve applies defaults and validates; it returns the completed copy
// (slices and the TLS struct copied, so the caller's stay as they were).
// It is the one place the driver's options are checked. Errors name the
// field and wrap config.ErrInvalidConfig.
func (c Config) resolve() (Config, error) {
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
	if c.ReplayWindow == 0 {
		c.ReplayWindow = DefaultReplayWindow
	}
	if c.MaxLogBytes == 0 {
		c.MaxLogBytes = DefaultMaxLogBytes
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
	if c.DB < 0 || c.DB > maxDB {
		return c, invalidf("DB", "must be between 0 and %d, got %d", maxDB, c.DB)
	}
	if c.DB != 0 && len(c.Addresses) > 0 && c.MasterName == "" {
		return c, invalidf("DB", "a Redis Cluster (Addresses without MasterName) has only database 0, got %d", c.DB)
	}
	if c.PoolSize < 1 || c.PoolSize > maxPoolSize {
		return c, invalidf("PoolSize", "must be between 1 and %d (0 means %d), got %d", maxPoolSize, DefaultPoolSize, c.PoolSize)
	}
	if c.MaxRetries < -1 || c.MaxRetries > maxMaxRetries {
		return c, invalidf("MaxRetries", "must be between -1 (no retries) and %d (0 means %d), got %d", maxMaxRetries, DefaultMaxRetries, c.MaxRetries)
	}
	if c.DialTimeout < minDialTimeout || c.DialTimeout > maxDialTimeout {
		return c, invalidf("DialTimeout", "must be between %v and %v (0 means %v), got %v", minDialTimeout, maxDialTimeout, DefaultDialTimeout, c.DialTimeout)
	}
	if c.ReplayWindow < minReplayWindow || c.ReplayWindow > maxReplayWindow {
		return c, invalidf("ReplayWindow", "must be between %v and %v (0 means %v), got %v", minReplayWindow, maxReplayWindow, DefaultReplayWindow, c.ReplayWindow)
	}
	if c.MaxLogBytes < minMaxLogBytes || c.MaxLogBytes > maxMaxLogBytes {
		return c, invalidf("MaxLogBytes", "must be between %d and %d (0 means %d), got %d", minMaxLogBytes, maxMaxLogBytes, DefaultMaxLogBytes, c.MaxLogBytes)
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

var (
	durationType  = reflect.TypeFor[time.Duration]()
	tlsPtrType    = reflect.TypeFor[*TLSConfig]()
	clientType    = reflect.TypeFor[goredis.UniversalClient]()
	stringsType   = reflect.TypeFor[[]string]()
	fieldsByType  = map[reflect.Type]map[string]int{}
	namesByType   = map[reflect.Type][]string{}
	mapFieldTypes = []reflect.Type{reflect.TypeFor[Config](), reflect.TypeFor[TLSConfig]()}
)

func init() {
	for _, t := range mapFieldTypes {
		byKey := map[string]int{}
		var names []string
		for i := range t.NumField() {
			f := t.Field(i)
			byKey[strings.ToLower(f.Name)] = i
			names = append(names, f.Name)
			if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); tag != "" && tag != "-" {
				byKey[strings.ToLower(tag)] = i
			}
		}
		sort.Strings(names)
		fieldsByType[t], namesByType[t] = byKey, names
	}
}

// decodeMap sets the fields of the struct v (Config or TLSConfig) from m,
// matching keys case-insensitively against field names and json tags.
func decodeMap(m map[string]any, v reflect.Value, prefix string) error {
	byKey, names := fieldsByType[v.Type()], namesByType[v.Type()]
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	seen := make(map[int]string, len(m)) // field index → spelling used
	for _, k := range keys {
		i, ok := byKey[strings.ToLower(k)]
		if !ok {
			return invalidf(prefix+k, "unknown key%s (accepted: %s)", suggest.DidYouMean(k, names), strings.Join(names, ", "))
		}
		if prev, dup := seen[i]; dup {
			return invalidf(prefix+k, "given twice (also as %q)", prev)
		}
		seen[i] = k
		if m[k] == nil {
			continue
		}
		f := v.Field(i)
		if err := setField(f, m[k], prefix+k); err != nil { // named as the document spells it
			return err
		}
	}
	return nil
}

// setField converts x to f's type: the forms Go code and decoders produce.
func setField(f reflect.Value, x any, name string) error {
	var err error
	switch t := f.Type(); {
	case t == durationType:
		var d time.Duration
		d, err = asDuration(x)
		f.SetInt(int64(d))
	case t == tlsPtrType:
		var tc *TLSConfig
		if tc, err = asTLS(x, name); err == nil {
			f.Set(reflect.ValueOf(tc))
		}
		return err // asTLS names the nested key itself
	case t == clientType:
		err = errors.New("a client cannot be given in DriverConfig: build the driver with redis.New(redis.Config{Client: ...}) and set InvalidationConfig.Driver")
	case t == stringsType:
		var s []string
		s, err = asStrings(x)
		f.Set(reflect.ValueOf(s))
	case t.Kind() == reflect.String:
		s, ok := x.(string)
		if !ok {
			err = fmt.Errorf("want a string, got %T", x)
		}
		f.SetString(s)
	case t.Kind() == reflect.Bool:
		b, ok := x.(bool)
		if !ok {
			err = fmt.Errorf("want a bool, got %T", x)
		}
		f.SetBool(b)
	case t.Kind() == reflect.Int || t.Kind() == reflect.Int64:
		var i int64
		if i, err = asInt64(x); err == nil && t.Kind() == reflect.Int && (i < math.MinInt || i > math.MaxInt) {
			err = fmt.Errorf("%d out of range", i)
		}
		f.SetInt(i)
	default:
		err = fmt.Errorf("cannot be set in DriverConfig")
	}
	if err != nil {
		return invalidf(name, "%v", err)
	}
	return nil
}

func asInt64(v any) (int64, error) {
	switch x := v.(type) {
	case int, int8, int16, int32, int64:
		return reflect.ValueOf(x).Int(), nil
	case uint, uint8, uint16, uint32, uint64, uintptr:
		u := reflect.ValueOf(x).Uint()
		if u > math.MaxInt64 {
			return 0, fmt.Errorf("%d out of range", u)
		}
		return int64(u), nil
	case float32:
		return floatToInt64(float64(x))
	case float64:
		return floatToInt64(x)
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, nil
		}
		if f, err := x.Float64(); err == nil {
			return floatToInt64(f)
		}
		return 0, fmt.Errorf("%s is not an integer", x)
	default:
		return 0, fmt.Errorf("want an integer, got %T", v)
	}
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

// asDuration accepts a time.Duration (Go code) or a string for
// time.ParseDuration ("5s"), as every configuration file writes one. A bare
// number is refused: read as nanoseconds, "dialTimeout: 2000" would be 2µs.
func asDuration(v any) (time.Duration, error) {
	switch x := v.(type) {
	case time.Duration:
		return x, nil
	case string:
		d, err := time.ParseDuration(x)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration (want e.g. \"5s\")", x)
		}
		return d, nil
	}
	return 0, fmt.Errorf("want a duration such as \"5s\" (or a time.Duration), got %T %v", v, v)
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

// asTLS accepts a map of TLSConfig's keys, a TLSConfig or a pointer to
// one, or a bool (true: TLS with the system's root CAs).
func asTLS(v any, name string) (*TLSConfig, error) {
	switch x := v.(type) {
	case bool:
		return &TLSConfig{Enabled: x}, nil
	case TLSConfig:
		return &x, nil
	case *TLSConfig:
		if x == nil {
			return nil, nil
		}
		t := *x
		return &t, nil
	case map[string]any:
		var t TLSConfig
		if err := decodeMap(x, reflect.ValueOf(&t).Elem(), name+"."); err != nil {
			return nil, err
		}
		return &t, nil
	default:
		return nil, invalidf(name, "want a map of TLS settings, a TLSConfig or a bool, got %T", v)
	}
}
