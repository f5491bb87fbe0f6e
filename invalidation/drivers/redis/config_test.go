package redis

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
	"github.com/halilbulentorhon/invacache-go/invalidation"
)

// parseMap reads a DriverConfig map as NewCache does.
func parseMap(m map[string]any) (Config, error) {
	return ConfigFrom(config.InvalidationConfig{DriverConfig: m})
}

// TestParseMapGood covers every key in every accepted spelling and value type.
func TestParseMapGood(t *testing.T) {
	tlsWant := &TLSConfig{Enabled: true, CAFile: "ca.pem", CertFile: "c.pem", KeyFile: "k.pem", ServerName: "redis", InsecureSkipVerify: true}
	tests := []struct {
		name string
		in   map[string]any
		want Config
	}{
		{"empty", map[string]any{}, Config{}},
		{"nil value is unset", map[string]any{"Address": nil, "DB": nil}, Config{}},
		{"Address", map[string]any{"Address": "h:1"}, Config{Address: "h:1"}},
		{"address (json tag)", map[string]any{"address": "h:1"}, Config{Address: "h:1"}},
		{"ADDRESS (any case)", map[string]any{"ADDRESS": "h:1"}, Config{Address: "h:1"}},
		{"Password", map[string]any{"Password": "pw"}, Config{Password: "pw"}},
		{"password", map[string]any{"password": "pw"}, Config{Password: "pw"}},
		{"DB int", map[string]any{"DB": 2}, Config{DB: 2}},
		{"db float64", map[string]any{"db": float64(3)}, Config{DB: 3}},
		{"DB int64", map[string]any{"DB": int64(4)}, Config{DB: 4}},
		{"DB uint64", map[string]any{"DB": uint64(5)}, Config{DB: 5}},
		{"DB json.Number", map[string]any{"DB": json.Number("6")}, Config{DB: 6}},
		{"DB int32", map[string]any{"DB": int32(7)}, Config{DB: 7}},
		{"DB uint8", map[string]any{"DB": uint8(8)}, Config{DB: 8}},
		{"Channel", map[string]any{"Channel": "c"}, Config{Channel: "c"}},
		{"channel", map[string]any{"channel": "c"}, Config{Channel: "c"}},
		{"PoolSize int", map[string]any{"PoolSize": 20}, Config{PoolSize: 20}},
		{"poolSize float64", map[string]any{"poolSize": 20.0}, Config{PoolSize: 20}},
		{"PoolSize json.Number", map[string]any{"PoolSize": json.Number("20")}, Config{PoolSize: 20}},
		{"MaxRetries int", map[string]any{"MaxRetries": 5}, Config{MaxRetries: 5}},
		{"maxRetries float64", map[string]any{"maxRetries": 5.0}, Config{MaxRetries: 5}},
		{"MaxRetries -1", map[string]any{"MaxRetries": -1}, Config{MaxRetries: -1}},
		{"DialTimeout Duration", map[string]any{"DialTimeout": 5 * time.Second}, Config{DialTimeout: 5 * time.Second}},
		{"dialTimeout string", map[string]any{"dialTimeout": "1m30s"}, Config{DialTimeout: 90 * time.Second}},
		{"ReplayWindow Duration", map[string]any{"ReplayWindow": time.Minute}, Config{ReplayWindow: time.Minute}},
		{"replayWindow string", map[string]any{"replayWindow": "1m"}, Config{ReplayWindow: time.Minute}},
		{"MaxLogBytes int", map[string]any{"MaxLogBytes": 1 << 20}, Config{MaxLogBytes: 1 << 20}},
		{"maxLogBytes float64", map[string]any{"maxLogBytes": float64(1 << 20)}, Config{MaxLogBytes: 1 << 20}},
		{"DisableReplay", map[string]any{"DisableReplay": true}, Config{DisableReplay: true}},
		{"disableReplay", map[string]any{"disableReplay": true}, Config{DisableReplay: true}},
		{"Username", map[string]any{"Username": "app"}, Config{Username: "app"}},
		{"username", map[string]any{"username": "app"}, Config{Username: "app"}},
		{"TLS map", map[string]any{"TLS": map[string]any{"Enabled": true, "CAFile": "ca.pem", "CertFile": "c.pem", "KeyFile": "k.pem", "ServerName": "redis", "InsecureSkipVerify": true}},
			Config{TLS: tlsWant}},
		{"tls map json tags", map[string]any{"tls": map[string]any{"enabled": true, "caFile": "ca.pem", "certFile": "c.pem", "keyFile": "k.pem", "serverName": "redis", "insecureSkipVerify": true}},
			Config{TLS: tlsWant}},
		{"TLS struct", map[string]any{"TLS": *tlsWant}, Config{TLS: tlsWant}},
		{"TLS pointer", map[string]any{"TLS": tlsWant}, Config{TLS: tlsWant}},
		{"TLS bool", map[string]any{"TLS": true}, Config{TLS: &TLSConfig{Enabled: true}}},
		{"Addresses []string", map[string]any{"Addresses": []string{"a:1", "b:2"}}, Config{Addresses: []string{"a:1", "b:2"}}},
		{"addresses []any", map[string]any{"addresses": []any{"a:1", "b:2"}}, Config{Addresses: []string{"a:1", "b:2"}}},
		{"MasterName", map[string]any{"MasterName": "mymaster"}, Config{MasterName: "mymaster"}},
		{"masterName", map[string]any{"masterName": "mymaster"}, Config{MasterName: "mymaster"}},
		{"ShardedPubSub", map[string]any{"ShardedPubSub": true}, Config{ShardedPubSub: true}},
		{"shardedPubSub", map[string]any{"shardedPubSub": true}, Config{ShardedPubSub: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseMap(tc.in)
			if err != nil {
				t.Fatalf("parseMap(%v) error: %v", tc.in, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("parseMap(%v)\n got %+v\nwant %+v", tc.in, got, tc.want)
			}
		})
	}
}

// TestParseMapBad checks that every bad key or value is an error wrapping
// config.ErrInvalidConfig and naming the key.
func TestParseMapBad(t *testing.T) {
	tests := []struct {
		name    string
		in      map[string]any
		mention string // the error must contain it
	}{
		{"unknown key", map[string]any{"Adress": "h:1"}, `Adress`},
		{"unknown key suggests", map[string]any{"Adress": "h:1"}, `did you mean "Address"`},
		{"duplicate spelling", map[string]any{"Address": "a:1", "address": "b:1"}, "given twice"},
		{"Address int", map[string]any{"Address": 6379}, "Address"},
		{"Password int", map[string]any{"Password": 1}, "Password"},
		{"DB string", map[string]any{"DB": "0"}, "DB"},
		{"DB fraction", map[string]any{"DB": 1.5}, "DB"},
		{"DB bool", map[string]any{"DB": true}, "DB"},
		{"DB uint64 overflow", map[string]any{"DB": uint64(1 << 63)}, "DB"},
		{"DB json.Number fraction", map[string]any{"DB": json.Number("1.5")}, "DB"},
		{"Channel int", map[string]any{"Channel": 1}, "Channel"},
		{"PoolSize string", map[string]any{"PoolSize": "10"}, "PoolSize"},
		{"MaxRetries bool", map[string]any{"MaxRetries": false}, "MaxRetries"},
		{"DialTimeout bad string", map[string]any{"DialTimeout": "5 seconds"}, "DialTimeout"},
		{"DialTimeout fraction", map[string]any{"DialTimeout": 1.5}, "DialTimeout"},
		{"DialTimeout bool", map[string]any{"DialTimeout": true}, "DialTimeout"},
		{"Username int", map[string]any{"Username": 1}, "Username"},
		{"TLS string", map[string]any{"TLS": "yes"}, "TLS"},
		{"TLS unknown key", map[string]any{"TLS": map[string]any{"Enable": true}}, `did you mean "Enabled"`},
		{"TLS wrong type", map[string]any{"TLS": map[string]any{"Enabled": "yes"}}, "Enabled"},
		{"TLS CAFile int", map[string]any{"TLS": map[string]any{"CAFile": 1}}, "CAFile"},
		{"Addresses string", map[string]any{"Addresses": "a:1,b:2"}, "Addresses"},
		{"Addresses mixed", map[string]any{"Addresses": []any{"a:1", 2}}, "Addresses"},
		{"MasterName int", map[string]any{"MasterName": 1}, "MasterName"},
		{"ShardedPubSub string", map[string]any{"ShardedPubSub": "true"}, "ShardedPubSub"},
		{"Client string", map[string]any{"Client": "localhost:6379"}, "Client"},
		{"Client value", map[string]any{"Client": goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"})}, "redis.New"},
		// A bare number is not a duration: 2000000 would be 2ms.
		{"DialTimeout float64 ns", map[string]any{"DialTimeout": float64(2e9)}, "DialTimeout"},
		{"DialTimeout int ns", map[string]any{"DialTimeout": 2000000}, "5s"},
		{"ReplayWindow json.Number", map[string]any{"ReplayWindow": json.Number("1000000000")}, "ReplayWindow"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseMap(tc.in)
			if err == nil {
				t.Fatalf("parseMap(%v) = nil error, want one mentioning %q", tc.in, tc.mention)
			}
			if !errors.Is(err, config.ErrInvalidConfig) {
				t.Errorf("error %q does not wrap config.ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("error %q does not mention %q", err, tc.mention)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	got, err := Config{}.resolve()
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Address: DefaultAddress, Channel: DefaultChannel, PoolSize: DefaultPoolSize, MaxRetries: DefaultMaxRetries, DialTimeout: DefaultDialTimeout, ReplayWindow: DefaultReplayWindow, MaxLogBytes: DefaultMaxLogBytes}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", got, want)
	}

	bad := []struct {
		name  string
		cfg   Config
		field string
	}{
		{"negative DB", Config{DB: -1}, "DB"},
		{"DB on a cluster", Config{Addresses: []string{"a:1"}, DB: 1}, "DB"},
		{"negative PoolSize", Config{PoolSize: -1}, "PoolSize"},
		{"MaxRetries below -1", Config{MaxRetries: -2}, "MaxRetries"},
		{"negative DialTimeout", Config{DialTimeout: -time.Second}, "DialTimeout"},
		{"blank Channel", Config{Channel: "  "}, "Channel"},
		{"MaxLogBytes below 64 KiB", Config{MaxLogBytes: 1000}, "MaxLogBytes"},
		{"Address without port", Config{Address: "localhost"}, "Address"},
		{"empty Addresses entry", Config{Addresses: []string{"a:1", ""}}, "Addresses[1]"},
		{"bad Addresses entry", Config{Addresses: []string{"nope"}}, "Addresses[0]"},
		{"MasterName without sentinels", Config{MasterName: "m"}, "MasterName"},
		{"cert without key", Config{TLS: &TLSConfig{Enabled: true, CertFile: "c.pem"}}, "TLS"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.cfg.resolve()
			if err == nil {
				t.Fatalf("resolve(%+v) = nil error, want one naming %s", tc.cfg, tc.field)
			}
			if !errors.Is(err, config.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.field) {
				t.Errorf("resolve error %q: want it to wrap ErrInvalidConfig and name %s", err, tc.field)
			}
		})
	}
}

// TestFactory goes through the registry, as NewCache does.
func TestFactory(t *testing.T) {
	leakcheck.Check(t)
	if !strings.Contains(strings.Join(invalidation.Registered(), ","), "redis") {
		t.Fatalf("redis not registered: %v", invalidation.Registered())
	}
	open := func(spec invalidation.Spec) (invalidation.Driver, error) {
		spec.Type = "redis"
		return invalidation.Open(spec)
	}
	// The seed's sample values, as Go code writes them (but a closed port:
	// New probes a reachable Redis, and the shared one is not ours).
	d, err := open(invalidation.Spec{Options: map[string]any{
		"Address": "127.0.0.1:1", "Password": "", "DB": 0, "Channel": "invacache:invalidation",
		"PoolSize": 10, "MaxRetries": 3, "DialTimeout": 5 * time.Second,
	}})
	if err != nil {
		t.Fatalf("seed map: %v", err)
	}
	if got := d.(invalidation.ConnectTimeouter).ConnectTimeout(); got != 5*time.Second {
		t.Errorf("ConnectTimeout = %v, want 5s", got)
	}
	_ = d.Close()

	// The typed form reaches the driver as the equivalent map.
	typed, err := ConfigFrom(config.InvalidationConfig{Redis: &config.RedisInvalidationConfig{Address: "127.0.0.1:1", Channel: "typed", DialTimeout: time.Second,
		TLS: &config.TLSConfig{Enabled: true, ServerName: "r"}, Addresses: []string{"a:1"}, MaxLogBytes: 1 << 20}})
	if err != nil {
		t.Fatalf("typed: %v", err)
	}
	if want := (Config{Address: "127.0.0.1:1", Channel: "typed", DialTimeout: time.Second, TLS: &TLSConfig{Enabled: true, ServerName: "r"}, Addresses: []string{"a:1"}, MaxLogBytes: 1 << 20}); !reflect.DeepEqual(typed, want) {
		t.Errorf("typed form decoded as %+v, want %+v", typed, want)
	}

	for _, spec := range []invalidation.Spec{
		{Options: map[string]any{"Adress": "localhost:6379"}},
		{Options: map[string]any{"PoolSize": -1}},
		{Options: map[string]any{"TLS": map[string]any{"Enabled": true, "CAFile": "/nonexistent/ca.pem"}}},
	} {
		if _, err := open(spec); !errors.Is(err, config.ErrInvalidConfig) {
			t.Errorf("Open(%+v) = %v, want ErrInvalidConfig", spec, err)
		}
	}
}

// A configuration file decodes into map[string]any with float64 numbers and
// duration strings; both work.
func TestJSONFileForms(t *testing.T) {
	leakcheck.Check(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "cache.json")
	if err := os.WriteFile(path, []byte(`{"invalidation": {"type": "redis", "maxStaleness": "2s",
		"driverConfig": {"address": "127.0.0.1:1", "db": 1, "poolSize": 20, "dialTimeout": "2s",
		"addresses": [], "tls": {"enabled": false}, "replayWindow": "2m", "disableReplay": false}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	d, err := factory(invalidation.Spec{Type: "redis", Options: cfg.Invalidation.DriverConfig})
	if err != nil {
		t.Fatalf("driverConfig from JSON: %v", err)
	}
	defer d.Close()
	if got := d.(*Driver).ConnectTimeout(); got != 2*time.Second {
		t.Errorf("DialTimeout = %v, want 2s", got)
	}
	if got := d.(*Driver).window; got != 2*time.Minute {
		t.Errorf("ReplayWindow = %v, want 2m", got)
	}

	typed, err := config.Parse([]byte(`{"invalidation": {"type":"redis","redis":{"address":"127.0.0.1:1","dialTimeout":"3s","poolSize":5,"replayWindow":"30s","disableReplay":true}}}`))
	if err != nil {
		t.Fatal(err)
	}
	resolved, err := config.Resolve(typed)
	if err != nil {
		t.Fatal(err)
	}
	d2, err := factory(invalidation.Spec{Type: "redis", Options: resolved.Invalidation.DriverConfig})
	if err != nil {
		t.Fatalf("typed from JSON: %v", err)
	}
	defer d2.Close()
	if got := d2.(*Driver).ConnectTimeout(); got != 3*time.Second {
		t.Errorf("DialTimeout = %v, want 3s", got)
	}
	if got := d2.(*Driver); got.window != 30*time.Second || !got.noReplay {
		t.Errorf("ReplayWindow, DisableReplay = %v, %v; want 30s, true", got.window, got.noReplay)
	}
}

func FuzzParseMap(f *testing.F) {
	f.Add("Address", "localhost:6379", int64(0), 0.0, true)
	f.Add("DB", "", int64(-1), 1.5, false)
	f.Add("DialTimeout", "5s", int64(1e9), 2e9, true)
	f.Add("TLS", "x", int64(0), 0.0, true)
	f.Fuzz(func(t *testing.T, key, s string, i int64, fl float64, b bool) {
		for _, v := range []any{s, i, fl, b, nil, []any{s}, map[string]any{key: s}} {
			p, err := parseMap(map[string]any{key: v})
			if err != nil {
				if !errors.Is(err, config.ErrInvalidConfig) {
					t.Fatalf("parseMap(%q: %v) error %v does not wrap ErrInvalidConfig", key, v, err)
				}
				continue
			}
			if _, err := p.resolve(); err != nil && !errors.Is(err, config.ErrInvalidConfig) {
				t.Fatalf("resolve error %v does not wrap ErrInvalidConfig", err)
			}
		}
	})
}

// Every numeric option is bounded: an out-of-range value is an
// ErrInvalidConfig naming the key and the bound, never a panic inside
// go-redis (PoolSize 3e9) nor a huge pre-filled semaphore (issue 10 item 6).
func TestNumericOptionsBounded(t *testing.T) {
	tests := []struct {
		key, bound string
		cfg        Config
		m          map[string]any
	}{
		{"PoolSize", "1000", Config{PoolSize: 3_000_000_000}, map[string]any{"poolSize": 3e9}},
		{"PoolSize", "1000", Config{PoolSize: maxPoolSize + 1}, map[string]any{"PoolSize": maxPoolSize + 1}},
		{"MaxRetries", "100", Config{MaxRetries: maxMaxRetries + 1}, map[string]any{"maxRetries": 1e6}},
		{"DB", "2147483647", Config{DB: 1 << 40}, map[string]any{"db": float64(1 << 40)}},
		{"DialTimeout", "1m0s", Config{DialTimeout: maxDialTimeout + 1}, map[string]any{"dialTimeout": "1000h"}},
		{"DialTimeout", "1ms", Config{DialTimeout: time.Nanosecond}, map[string]any{"dialTimeout": "1us"}},
		{"ReplayWindow", "24h0m0s", Config{ReplayWindow: maxReplayWindow + 1}, map[string]any{"ReplayWindow": "25h"}},
		{"ReplayWindow", "1s", Config{ReplayWindow: time.Millisecond}, map[string]any{"replayWindow": time.Millisecond}},
		{"ReplayWindow", "1s", Config{ReplayWindow: -time.Minute}, map[string]any{"replayWindow": "-1m"}},
	}
	check := func(t *testing.T, key, bound string, build func() (*Driver, error)) {
		t.Helper()
		var (
			d   *Driver
			err error
		)
		func() {
			defer func() {
				if p := recover(); p != nil {
					err = fmt.Errorf("panic: %v", p)
				}
			}()
			d, err = build()
		}()
		if d != nil {
			_ = d.Close()
		}
		if !errors.Is(err, config.ErrInvalidConfig) {
			t.Fatalf("err = %v, want ErrInvalidConfig", err)
		}
		if msg := err.Error(); !strings.Contains(msg, key) || !strings.Contains(msg, bound) {
			t.Errorf("error %q does not name the key %s and the bound %s", msg, key, bound)
		}
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/%+v", tc.key, tc.m), func(t *testing.T) {
			check(t, tc.key, tc.bound, func() (*Driver, error) { return New(tc.cfg) })
			check(t, tc.key, tc.bound, func() (*Driver, error) {
				d, err := factory(invalidation.Spec{Type: TypeName, Options: tc.m})
				dd, _ := d.(*Driver)
				return dd, err
			})
		})
	}
	// The bounds themselves are accepted.
	for _, c := range []Config{
		{PoolSize: maxPoolSize, MaxRetries: maxMaxRetries, DB: maxDB, DialTimeout: maxDialTimeout, Address: "127.0.0.1:1", ReplayWindow: maxReplayWindow},
		{MaxRetries: -1, DialTimeout: minDialTimeout, Address: "127.0.0.1:1", ReplayWindow: minReplayWindow},
	} {
		if _, err := c.resolve(); err != nil {
			t.Errorf("resolve(%+v): %v, want the bounds accepted", c, err)
		}
	}
}

// config.Parse checks the driver's settings as NewCache would, in both
// forms, so a file that parses opens; errors name the section.
func TestParseChecksDriverSettings(t *testing.T) {
	tests := []struct {
		name, doc, mention string
	}{
		{"map: window too long", "invalidation: {type: redis, driverConfig: {address: 'h:1', replayWindow: 48h}}", "invalidation.driverConfig"},
		{"map: nanoseconds", "invalidation: {type: redis, driverConfig: {dialTimeout: 2000000}}", "dialTimeout"},
		{"map: unknown key", `{"invalidation": {"type": "redis", "driverConfig": {"adress": "h:1"}}}`, `did you mean "Address"`},
		{"typed: window too long", "invalidation: {type: redis, redis: {replayWindow: 48h}}", "invalidation.redis"},
		{"typed: bad address", "invalidation: {redis: {address: 'nohostport'}}", "Address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tc.doc))
			if err == nil || !errors.Is(err, config.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("Parse(%s) = %v, want an invalid-config error mentioning %q", tc.doc, err, tc.mention)
			}
		})
	}
	if _, err := config.Parse([]byte("invalidation: {type: redis, driverConfig: {address: 'h:1', replayWindow: 2h, dialTimeout: 3s}}")); err != nil {
		t.Errorf("Parse of a good document: %v", err)
	}
}
