package redis

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/halilbulentorhon/invacache-go/config"
)

// registry is the process-wide table of shared hubs: drivers (and
// publishers) built from equal connection settings get the same hub, so 200
// caches on one Redis hold one publish pool and one subscription connection
// between them. It only counts references; the hub owns its clients and its
// subscription session.
type registry struct {
	mu sync.Mutex
	m  map[hubKey]*hub // guarded by mu
}

// hubs is the process's registry.
var hubs registry

// hubKey identifies what a hub serves. It is compared, never printed, and
// holds a digest of the password rather than the password itself.
type hubKey struct {
	client      string // a caller's client ("%T|%p"); empty for built clients
	address     string
	addresses   string // Addresses, quoted and joined
	masterName  string
	username    string
	password    [sha256.Size]byte
	db          int
	poolSize    int
	maxRetries  int
	dialTimeout time.Duration
	tls         config.TLSConfig // zero unless TLS is enabled
	sharded     bool
	// channel is set for sharded Pub/Sub only: a sharded subscription lives
	// on the node that owns the channel's slot, so each channel needs its
	// own connection.
	channel string
}

// keyOf returns the key of a resolved configuration's connection settings.
func keyOf(c Config) hubKey {
	k := hubKey{
		address: c.Address, masterName: c.MasterName, username: c.Username,
		db: c.DB, poolSize: c.PoolSize, maxRetries: c.MaxRetries, dialTimeout: c.DialTimeout,
		sharded: c.ShardedPubSub,
	}
	if len(c.Addresses) > 0 {
		k.addresses = fmt.Sprintf("%q", c.Addresses)
	}
	if c.Password != "" {
		k.password = sha256.Sum256([]byte(c.Password))
	}
	if c.TLS != nil && c.TLS.Enabled {
		k.tls = *c.TLS
	}
	if c.ShardedPubSub {
		k.channel = c.Channel
	}
	return k
}

// clientKeyOf returns the key of a caller's client: only drivers given the
// same client share, never with drivers that built their own.
func clientKeyOf(c Config) hubKey {
	k := hubKey{client: fmt.Sprintf("%T|%p", c.Client, c.Client), sharded: c.ShardedPubSub}
	if c.ShardedPubSub {
		k.channel = c.Channel
	}
	return k
}

// acquire returns the hub for key, building it when none exists, and counts
// a reference to it. The hub logs to logger unless it already has an
// enabled one.
func (r *registry) acquire(key hubKey, logger *slog.Logger, build func() (*hub, error)) (*hub, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if h, ok := r.m[key]; ok {
		h.refs++
		if cur := h.logger.Load(); !enabled(cur) && enabled(logger) {
			h.logger.Store(logger)
		}
		return h, nil
	}
	h, err := build()
	if err != nil {
		return nil, err
	}
	h.logger.Store(logger)
	h.key, h.refs = key, 1
	if r.m == nil {
		r.m = map[hubKey]*hub{}
	}
	r.m[key] = h
	return h, nil
}

// release drops one reference to h and reports whether it was the last (h
// is then out of the registry, and the caller closes it).
func (r *registry) release(h *hub) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	h.refs--
	if h.refs > 0 {
		return false
	}
	delete(r.m, h.key)
	return true
}

func enabled(l *slog.Logger) bool {
	return l != nil && l.Enabled(context.Background(), slog.LevelError)
}
