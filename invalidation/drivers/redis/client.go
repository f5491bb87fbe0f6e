package redis

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// NewClient returns a go-redis client built from cfg exactly as the driver
// builds its own (defaults, checks, topology, TLS, RESP2, timeouts): for a
// program's own traffic to the same Redis, or a client of its own to pass
// in Config.Client. The caller closes it. It does not connect.
func NewClient(cfg Config) (goredis.UniversalClient, error) {
	if cfg.Client != nil {
		return nil, invalidf("Client", "NewClient builds a client from the connection settings; Client must be nil")
	}
	c, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	return newClient(c, nil)
}

// newClient builds the go-redis client for a resolved configuration:
//   - MasterName set: Sentinel (redis.NewFailoverClient), Addresses are the sentinels;
//   - Addresses set: Redis Cluster (redis.NewClusterClient), Addresses are seed nodes;
//   - otherwise a single server at Address (redis.NewClient).
//
// wrap, when not nil, wraps the dialer (the publish client's connections are
// tracked so that a cancelled Publish can interrupt them).
func newClient(c Config, wrap func(dialFunc) dialFunc) (goredis.UniversalClient, error) {
	tc, err := tlsConfig(c.TLS)
	if err != nil {
		return nil, err
	}
	var dial dialFunc
	if wrap != nil {
		dial = wrap(goredis.NewDialer(&goredis.Options{DialTimeout: c.DialTimeout, TLSConfig: tc}))
	}
	opts := &goredis.UniversalOptions{
		Addrs:       c.Addresses,
		DB:          c.DB,
		Username:    c.Username,
		Password:    c.Password,
		MasterName:  c.MasterName,
		PoolSize:    c.PoolSize,
		MaxRetries:  c.MaxRetries,
		DialTimeout: c.DialTimeout,
		TLSConfig:   tc,
		Dialer:      dial,
		// RESP2: a subscribed connection is then a "pubsub" client for Redis
		// (CLIENT KILL TYPE pubsub, client-output-buffer-limit pubsub), and
		// PING answers through the subscription as the liveness proof.
		Protocol: 2,
		// One dial attempt per try: MaxRetries already retries, and the
		// engine's outbox retries with backoff above that; go-redis's
		// default (5 dials 100ms apart per try) made a Publish to a dead
		// node take seconds.
		DialerRetries: 1,
		// A deadline on the Publish context bounds the network I/O too.
		ContextTimeoutEnabled: true,
		// CLIENT SETINFO is unknown before Redis 7.2; skip the round trip.
		DisableIdentity: true,
	}
	switch {
	case c.MasterName != "":
		// Sentinel: the same credentials authenticate to the sentinels
		// unless they run without auth, which is the common setup.
		return goredis.NewFailoverClient(opts.Failover()), nil
	case len(c.Addresses) > 0:
		opts.IsClusterMode = true
		return goredis.NewClusterClient(opts.Cluster()), nil
	default:
		opts.Addrs = []string{c.Address}
		return goredis.NewClient(opts.Simple()), nil
	}
}

// tlsConfig turns the file-based settings into a *tls.Config; nil when TLS is
// off. The server name defaults to the host dialled (crypto/tls does that).
func tlsConfig(t *TLSConfig) (*tls.Config, error) {
	if t == nil || !t.Enabled {
		return nil, nil
	}
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // the user asked for it explicitly
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, invalidf("TLS.CAFile", "%v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, invalidf("TLS.CAFile", "%s holds no PEM certificate", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, invalidf("TLS.CertFile", "load key pair: %v", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

type dialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)

// connTracker knows a client's connections so that interruptReads can
// unblock the reads waiting on them: go-redis honours a context's deadline
// but not its cancellation once a command is on the wire.
type connTracker struct {
	mu    sync.Mutex
	conns map[*trackedConn]struct{} // guarded by mu
}

func newConnTracker() *connTracker {
	return &connTracker{conns: map[*trackedConn]struct{}{}}
}

func (t *connTracker) dialer(next dialFunc) dialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := next(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc := &trackedConn{Conn: c, t: t}
		t.mu.Lock()
		t.conns[tc] = struct{}{}
		t.mu.Unlock()
		return tc, nil
	}
}

// interruptReads breaks every connection blocked in a read (waiting for a
// reply). It runs when a Publish's context is cancelled; on a shared client
// it may also fail another driver's publish in flight at that instant,
// which that driver's engine retries.
func (t *connTracker) interruptReads() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for c := range t.conns {
		if c.reading.Load() > 0 {
			c.interrupt()
		}
	}
}

// trackedConn is a connection that can be interrupted for good: once
// interrupted every read fails at once, so go-redis discards it.
type trackedConn struct {
	net.Conn
	t           *connTracker
	reading     atomic.Int32
	interrupted atomic.Bool
}

var errInterrupted = errors.New("redis: publish interrupted: context cancelled")

var past = time.Unix(1, 0)

func (c *trackedConn) interrupt() {
	c.interrupted.Store(true)
	_ = c.Conn.SetReadDeadline(past)
}

func (c *trackedConn) Read(p []byte) (int, error) {
	if c.interrupted.Load() {
		return 0, errInterrupted
	}
	c.reading.Add(1)
	defer c.reading.Add(-1)
	return c.Conn.Read(p)
}

func (c *trackedConn) SetDeadline(d time.Time) error {
	if c.interrupted.Load() {
		d = past
	}
	return c.Conn.SetDeadline(d)
}

func (c *trackedConn) SetReadDeadline(d time.Time) error {
	if c.interrupted.Load() {
		d = past
	}
	return c.Conn.SetReadDeadline(d)
}

func (c *trackedConn) Close() error {
	c.t.mu.Lock()
	delete(c.t.conns, c)
	c.t.mu.Unlock()
	return c.Conn.Close()
}
