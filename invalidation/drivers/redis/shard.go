package redis

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// errNotOnShardMaster is passed to HandleLinkDown when a sharded
// subscription sits on a server that is not its channel's slot master.
var errNotOnShardMaster = errors.New("redis: the sharded subscription is not on its channel's slot master")

// shardWatch keeps a sharded cluster subscription on the master of its
// channel's slot. Redis 7 lets a replica serve SSUBSCRIBE for its master's
// slots and leaves subscribers where they are when a failover demotes their
// server (CLUSTER FAILOVER), or when a redial through a stale slot map
// reaches a killed master that restarted as a replica. The subscription
// then sits on a replica: it answers the liveness PINGs while messages
// reach it only through replication, so a broken replication link would
// let the node serve on fresh proofs while it misses invalidations (the
// Sentinel case of masterWatch).
type shardWatch struct {
	subAddr atomic.Pointer[string] // address of the latest subscription connection's dial
}

// pubsubDial marks a context whose dials open subscription connections
// (the session's), apart from the subscription client's command dials
// (slot map reloads).
type pubsubDial struct{}

// dialer records the address of every subscription connection's dial.
func (w *shardWatch) dialer(next dialFunc) dialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := next(ctx, network, addr)
		if err == nil && ctx.Value(pubsubDial{}) != nil {
			w.subAddr.Store(&addr)
		}
		return conn, err
	}
}

// onMaster reports whether the subscription's server is the master the
// client's slot map names for channel; true when either is unknown.
func (w *shardWatch) onMaster(ctx context.Context, cc *goredis.ClusterClient, channel string) bool {
	sub := w.subAddr.Load()
	if sub == nil {
		return true
	}
	m, err := cc.MasterForKey(ctx, channel)
	return err != nil || m.Options().Addr == *sub
}

// shardMapRefresh is how often watchShard reloads the slot map while it
// agrees with the subscription: a failover that leaves the subscription
// alive changes nothing else the client would notice.
const shardMapRefresh = time.Second

// watchShard runs while the session does, for a sharded subscription on a
// cluster: every ping interval (at least 100ms) it compares the server the
// subscription is on with its channel's slot master, reloading the slot map
// every shardMapRefresh. A first disagreement reloads the map (it may be the
// stale one); a second one in a row declares the connection dead (a gap;
// the reader redials the master).
func (s *session) watchShard(w *shardWatch, cc *goredis.ClusterClient) {
	strikes := 0
	reloaded := time.Now()
	s.everyPing(func(c *conn, _ time.Duration) {
		channels := s.snap.Load().channels
		switch {
		case c == nil || len(channels) == 0:
			strikes = 0
		case w.onMaster(s.ctx, cc, channels[0]):
			strikes = 0
			if time.Since(reloaded) >= shardMapRefresh {
				reloaded = time.Now()
				cc.ReloadState(s.ctx)
			}
		case strikes == 0:
			strikes = 1
			cc.ReloadState(s.ctx)
		default:
			strikes = 0
			s.declareDead(c, errNotOnShardMaster)
		}
	})
}
