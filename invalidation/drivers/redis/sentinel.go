package redis

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// errMasterMoved is passed to HandleLinkDown when the sentinels name a
// master other than the server the subscription is on.
var errMasterMoved = errors.New("redis: the sentinels name another master than the one the subscription is on")

// masterWatch keeps a Sentinel subscription on the master the sentinels
// name. go-redis's failover client closes its pooled connections on
// +switch-master but not a PubSub's, so after a failover with the old master
// alive (SENTINEL FAILOVER, a partition) the subscription stayed on the
// demoted server, which answered its PINGs for seconds while publishes went
// to the new master: a node served stale values on fresh proofs.
type masterWatch struct {
	name      string
	sentinels []*goredis.SentinelClient
	addrs     []string               // the sentinels' addresses (their dials are not the subscription's)
	subAddr   atomic.Pointer[string] // address of the subscription client's latest dial
}

func newMasterWatch(c Config) (*masterWatch, error) {
	tc, err := tlsConfig(c.TLS)
	if err != nil {
		return nil, err
	}
	w := &masterWatch{name: c.MasterName, addrs: c.Addresses}
	for _, a := range c.Addresses {
		w.sentinels = append(w.sentinels, goredis.NewSentinelClient(&goredis.Options{
			Addr: a, DialTimeout: c.DialTimeout, TLSConfig: tc, Protocol: 2, DisableIdentity: true,
			MaxRetries: -1, DialerRetries: 1, ContextTimeoutEnabled: true, PoolSize: 1,
		}))
	}
	return w, nil
}

// dialer records the address of every dial of the subscription client
// other than to a sentinel: the failover client dials the master it
// resolved.
func (w *masterWatch) dialer(next dialFunc) dialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := next(ctx, network, addr)
		if err == nil && !slices.Contains(w.addrs, addr) {
			w.subAddr.Store(&addr)
		}
		return conn, err
	}
}

// master asks the sentinels, in turn, for the master's address.
func (w *masterWatch) master(ctx context.Context) (string, bool) {
	for _, s := range w.sentinels {
		hp, err := s.GetMasterAddrByName(ctx, w.name).Result()
		if err == nil && len(hp) == 2 {
			return net.JoinHostPort(hp[0], hp[1]), true
		}
	}
	return "", false
}

// moved reports whether the sentinels name a master other than the server
// the subscription client dialled last.
func (w *masterWatch) moved(ctx context.Context) bool {
	sub := w.subAddr.Load()
	if sub == nil {
		return false
	}
	m, ok := w.master(ctx)
	return ok && m != *sub
}

func (w *masterWatch) close() error {
	if w == nil {
		return nil
	}
	var errs []error
	for _, s := range w.sentinels {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

// watchMaster runs while the session does, in Sentinel mode: every ping
// interval (at least 100ms) it compares the master the sentinels name with
// the server the subscription is on, and declares the connection dead when
// they differ (a gap; the reader redials the master the failover client
// resolves).
func (s *session) watchMaster(w *masterWatch) {
	defer s.wg.Done()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		every := max(s.snap.Load().ping, 100*time.Millisecond)
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		s.h.mu.Lock()
		c := s.conn
		s.h.mu.Unlock()
		if c != nil {
			ctx, cancel := context.WithTimeout(s.ctx, every)
			if w.moved(ctx) {
				s.declareDead(c, errMasterMoved)
			}
			cancel()
		}
		t.Reset(every)
	}
}
