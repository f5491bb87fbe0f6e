package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/invalidation"
	redisdriver "github.com/halilbulentorhon/invacache-go/invalidation/drivers/redis"
	"github.com/redis/go-redis/v9"
)

const defaultChannel = redisdriver.DefaultChannel

// commonFlags are the flags every command takes: the configuration file and
// the Redis connection. A flag given on the command line overrides the file.
type commonFlags struct {
	fs         *flag.FlagSet
	configFile string

	addr, username, password string
	db                       int
	channel                  string
	dialTimeout              time.Duration
	tls                      bool
	tlsCA, tlsCert, tlsKey   string
	tlsServerName            string
	tlsInsecure              bool
	sharded                  bool
}

func addCommonFlags(fs *flag.FlagSet, addrHelp string) *commonFlags {
	f := &commonFlags{fs: fs}
	fs.StringVar(&f.configFile, "config", "", "configuration `file` (JSON or YAML) holding a config.InvaCacheConfig, read by config.Parse; durations as \"5s\"")
	fs.StringVar(&f.addr, "redis", "", addrHelp)
	fs.StringVar(&f.username, "username", "", "Redis ACL user (Redis 6+)")
	fs.StringVar(&f.password, "password", "", "Redis password (default from $INVACACHE_REDIS_PASSWORD)")
	fs.IntVar(&f.db, "db", 0, "Redis database number")
	fs.StringVar(&f.channel, "channel", "", "Pub/Sub channel (default \""+defaultChannel+"\")")
	fs.DurationVar(&f.dialTimeout, "dial-timeout", 0, "Redis connect timeout (default 5s)")
	fs.BoolVar(&f.tls, "tls", false, "connect to Redis with TLS")
	fs.StringVar(&f.tlsCA, "tls-ca", "", "PEM `file` of the CA that signed the server's certificate (default: system roots)")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "PEM client certificate `file` (with --tls-key)")
	fs.StringVar(&f.tlsKey, "tls-key", "", "PEM client key `file`")
	fs.StringVar(&f.tlsServerName, "tls-server-name", "", "server name to verify (default: the host of --redis)")
	fs.BoolVar(&f.tlsInsecure, "tls-insecure", false, "do not verify the server's certificate (testing only)")
	fs.BoolVar(&f.sharded, "sharded", false, "sharded Pub/Sub (SPUBLISH/SSUBSCRIBE, Redis 7 cluster) (default: the config file's invalidation.redis.shardedPubSub)")
	return f
}

// settings is the resolved configuration of a command.
type settings struct {
	cache config.InvaCacheConfig // the file's cache config (Invalidation may be nil)
	redis redisdriver.Config     // file + flags; Address "" if neither gave one
}

// resolve reads --config and applies the flags given on the command line.
func (f *commonFlags) resolve() (settings, error) {
	var s settings
	if f.configFile != "" {
		c, err := loadConfigFile(f.configFile)
		if err != nil {
			return s, err
		}
		s.cache = c
	}
	if inv := s.cache.Invalidation; inv != nil && (inv.Redis != nil || len(inv.DriverConfig) > 0) {
		// The typed form or the map, read as the library reads them.
		r, err := redisdriver.ConfigFrom(*inv)
		if err != nil {
			return s, fmt.Errorf("%s: %w", f.configFile, err)
		}
		s.redis = r
	}
	if s.redis.Password == "" {
		s.redis.Password = os.Getenv("INVACACHE_REDIS_PASSWORD")
	}
	set := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	if set["redis"] {
		if f.addr == "" {
			return s, usagef("--redis: empty address")
		}
		s.redis.Address, s.redis.Addresses = f.addr, nil
		if strings.Contains(f.addr, ",") {
			s.redis.Addresses = strings.Split(f.addr, ",")
		}
	}
	if set["username"] {
		s.redis.Username = f.username
	}
	if set["password"] {
		s.redis.Password = f.password
	}
	if set["db"] {
		if f.db < 0 {
			return s, usagef("--db: %d is negative", f.db)
		}
		s.redis.DB = f.db
	}
	if set["channel"] {
		if f.channel == "" {
			return s, usagef("--channel: empty channel name")
		}
		s.redis.Channel = f.channel
	}
	if s.redis.Channel == "" {
		s.redis.Channel = defaultChannel
	}
	if set["dial-timeout"] {
		if f.dialTimeout <= 0 {
			return s, usagef("--dial-timeout: %v is not positive", f.dialTimeout)
		}
		s.redis.DialTimeout = f.dialTimeout
	}
	if set["sharded"] {
		s.redis.ShardedPubSub = f.sharded
	}
	if f.tls || f.tlsCA != "" || f.tlsCert != "" || f.tlsKey != "" || f.tlsServerName != "" || f.tlsInsecure {
		t := &redisdriver.TLSConfig{Enabled: true}
		if s.redis.TLS != nil {
			*t = *s.redis.TLS
			t.Enabled = true
		}
		if f.tlsCA != "" {
			t.CAFile = f.tlsCA
		}
		if f.tlsCert != "" {
			t.CertFile = f.tlsCert
		}
		if f.tlsKey != "" {
			t.KeyFile = f.tlsKey
		}
		if f.tlsServerName != "" {
			t.ServerName = f.tlsServerName
		}
		if f.tlsInsecure {
			t.InsecureSkipVerify = true
		}
		s.redis.TLS = t
	}
	return s, nil
}

// hasRedis reports whether a Redis server was named (by flag or file).
func (s settings) hasRedis() bool { return s.redis.Address != "" || len(s.redis.Addresses) > 0 }

// withDefaultAddress returns s with Address defaulted to localhost:6379.
func (s settings) withDefaultAddress() settings {
	if !s.hasRedis() {
		s.redis.Address = "localhost:6379"
	}
	return s
}

// addrString names the server(s) in messages.
func (s settings) addrString() string {
	if len(s.redis.Addresses) > 0 {
		return strings.Join(s.redis.Addresses, ",")
	}
	return s.redis.Address
}

// loadConfigFile reads a config.InvaCacheConfig from a JSON or YAML file
// with config.Parse, the library's one strict reader.
func loadConfigFile(path string) (config.InvaCacheConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return config.InvaCacheConfig{}, fmt.Errorf("config: %w", err)
	}
	cfg, err := config.Parse(data)
	if err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// newClient opens a go-redis client with the settings through the
// driver's one client construction (defaults, TLS, topology): for the CLI's
// own traffic (purge, monitor, preflight, raw benchmark) and for each cache
// node of demo and bench, which gets a client of its own (the Redis driver
// shares connections between drivers of equal settings, and in-process
// nodes must not share a subscription to behave like separate replicas).
func newClient(r redisdriver.Config) (redis.UniversalClient, error) {
	return redisdriver.NewClient(r)
}

// nodeDriver is a cache node's Redis driver over a client of its own. It
// embeds the concrete driver, not the invalidation.Driver interface, so that
// the driver's other methods (invalidation.Replayer, ConnectTimeout) stay
// visible to the cache: behind an interface the node would lose its replay
// log and clear on every gap.
type nodeDriver struct {
	*redisdriver.Driver
	client redis.UniversalClient
}

var (
	_ invalidation.Replayer         = (*nodeDriver)(nil)
	_ invalidation.ConnectTimeouter = (*nodeDriver)(nil)
)

func openNodeDriver(r redisdriver.Config, logger *slog.Logger) (*nodeDriver, error) {
	c, err := newClient(r)
	if err != nil {
		return nil, err
	}
	r.Client = c
	d, err := redisdriver.New(r, redisdriver.WithLogger(logger))
	if err != nil {
		c.Close()
		return nil, err
	}
	return &nodeDriver{Driver: d, client: c}, nil
}

// Close closes the driver, then its client.
func (n *nodeDriver) Close() error {
	err := n.Driver.Close()
	if cerr := n.client.Close(); err == nil {
		err = cerr
	}
	return err
}

// connect opens a client and proves the server answers (and accepts the
// credentials), turning failures into one clear sentence.
func connect(ctx context.Context, s settings) (redis.UniversalClient, error) {
	c, err := newClient(s.redis)
	if err != nil {
		return nil, err
	}
	dt := s.redis.DialTimeout
	if dt <= 0 {
		dt = redisdriver.DefaultDialTimeout
	}
	pctx, cancel := context.WithTimeout(ctx, dt+time.Second)
	defer cancel()
	if err := c.Ping(pctx).Err(); err != nil {
		c.Close()
		return nil, redisError(s.addrString(), err)
	}
	return c, nil
}

// redisError names the likely cause of a failed command.
func redisError(addr string, err error) error {
	msg := err.Error()
	for _, s := range []string{"WRONGPASS", "NOAUTH", "invalid password", "invalid username-password", "AUTH"} {
		if strings.Contains(msg, s) {
			return fmt.Errorf("authentication to Redis at %s failed: %w", addr, err)
		}
	}
	if strings.Contains(msg, "NOPERM") || strings.Contains(msg, "permission denied") || strings.Contains(msg, "can't run this command") {
		return fmt.Errorf("permission denied by Redis at %s: %w", addr, err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("cannot reach Redis at %s: no answer in time", addr)
	}
	return fmt.Errorf("cannot reach Redis at %s: %w", addr, err)
}

// lastErr is a slog handler that keeps the last "err" attribute logged: a
// publisher retries a failed publish until its deadline, and the command
// reports that failure's cause rather than the deadline.
type lastErr struct {
	mu  sync.Mutex
	err error // guarded by mu
}

func (h *lastErr) Enabled(context.Context, slog.Level) bool { return true }
func (h *lastErr) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *lastErr) WithGroup(string) slog.Handler            { return h }
func (h *lastErr) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if e, ok := a.Value.Any().(error); ok && a.Key == "err" {
			h.mu.Lock()
			h.err = e
			h.mu.Unlock()
		}
		return true
	})
	return nil
}

// or returns the last error logged when err is a deadline, else err.
func (h *lastErr) or(err error) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != nil && errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w (the last attempt: %w)", err, h.err)
	}
	return err
}

// discardLogger is the nodes' logger: the CLI prints its own report.
func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// redisLog routes go-redis's package-level log (dial retries, pool
// warnings) to a slog logger, so the CLI's output stays its report.
type redisLog struct{ l *slog.Logger }

func (r redisLog) Printf(_ context.Context, format string, v ...any) {
	r.l.Warn(fmt.Sprintf(format, v...))
}

// quietRedisLog silences go-redis's global logger, or sends it to l.
func quietRedisLog(l *slog.Logger) { redis.SetLogger(redisLog{l}) }
