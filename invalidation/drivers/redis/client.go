package redis

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	goredis "github.com/redis/go-redis/v9"

	"github.com/halilbulentorhon/invacache-go/config"
)

// newClient builds the go-redis client for a resolved configuration:
//   - MasterName set: Sentinel (redis.NewFailoverClient), Addresses are the sentinels;
//   - Addresses set: Redis Cluster (redis.NewClusterClient), Addresses are seed nodes;
//   - otherwise a single server at Address (redis.NewClient).
func newClient(c config.RedisInvalidationConfig) (goredis.UniversalClient, error) {
	tc, err := tlsConfig(c.TLS)
	if err != nil {
		return nil, err
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
		// RESP2: a subscribed connection is then a "pubsub" client for Redis
		// (CLIENT KILL TYPE pubsub, client-output-buffer-limit pubsub), and
		// PING answers through the subscription as the liveness proof.
		Protocol: 2,
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
func tlsConfig(t *config.TLSConfig) (*tls.Config, error) {
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

// settingsKey identifies the connection settings a hub serves: drivers built
// from equal settings share one publish pool and one subscription connection.
func settingsKey(c config.RedisInvalidationConfig) string {
	k := fmt.Sprintf("cfg|%q|%q|%d|%q|%q|%d|%d|%d|%q|%v", c.Address, c.Addresses, c.DB, c.Username, c.Password,
		c.PoolSize, c.MaxRetries, c.DialTimeout, c.MasterName, c.ShardedPubSub)
	if c.TLS != nil && c.TLS.Enabled {
		k += fmt.Sprintf("|tls|%+v", *c.TLS)
	}
	if c.ShardedPubSub {
		// A sharded subscription lives on the node that owns the channel's
		// slot, so each channel needs its own connection.
		k += fmt.Sprintf("|ch|%q", c.Channel)
	}
	return k
}
