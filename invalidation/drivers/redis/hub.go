package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	goredis "github.com/redis/go-redis/v9"

	"github.com/halilbulentorhon/invacache-go/internal/monotime"
)

// hub is what drivers of equal connection settings share (see registry): a
// client that publishes and, while anyone is subscribed, one subscription
// session multiplexing every channel its subscribers use (see session.go).
type hub struct {
	key        hubKey                      // set by the registry
	refs       int                         // guarded by hubs.mu
	pub        goredis.UniversalClient     // publishes
	sub        goredis.UniversalClient     // subscribes (pub too for a caller's client)
	tracker    *connTracker                // pub's connections; nil for a caller's client
	ownsClient bool                        // close the clients with the hub (false for a caller's client)
	sharded    bool                        // SSUBSCRIBE/SPUBLISH instead of SUBSCRIBE/PUBLISH
	watch      *masterWatch                // Sentinel mode with built clients: where the master is; else nil
	logger     atomic.Pointer[slog.Logger] // the first enabled logger of the drivers sharing the hub

	mu   sync.Mutex
	sess *session // guarded by mu; nil while nobody is subscribed

	// clock is the time base of the liveness PINGs and the dead-link check:
	// its monotonic reading only, so a wall clock step changes nothing. The
	// zero value reads the system clocks; tests set it before the first
	// Subscribe.
	clock monotime.Clock
}

func (h *hub) log() *slog.Logger { return h.logger.Load() }

// release drops one reference; the last closes the session (a safety net:
// drivers close their subscriptions first) and the clients the hub owns.
func (h *hub) release() error {
	if !hubs.release(h) {
		return nil
	}
	h.mu.Lock()
	s := h.sess
	h.sess = nil
	h.mu.Unlock()
	if s != nil {
		s.stop()
	}
	if h.ownsClient {
		if err := errors.Join(h.pub.Close(), h.sub.Close(), h.watch.close()); err != nil {
			return fmt.Errorf("redis: close client: %w", err)
		}
	}
	return nil
}

// attach adds sub, starting the session if it is the first subscriber.
func (h *hub) attach(sub *subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sess == nil {
		h.sess = newSession(h)
	}
	h.sess.add(sub)
}

// detach removes sub; the last subscriber stops the session and waits for
// its goroutines.
func (h *hub) detach(sub *subscription) {
	h.mu.Lock()
	s := h.sess
	if s == nil || !s.remove(sub) {
		h.mu.Unlock()
		return
	}
	if len(s.subs) > 0 {
		h.mu.Unlock()
		return
	}
	h.sess = nil
	h.mu.Unlock()
	s.stop()
}

// refreshTopology asks the cluster clients to reload their slot maps (in
// the background): a subscription reconnects to the node its cached map
// names, which after a failover is the dead master until the map is
// reloaded; and the catch-up that follows the resubscribe reads the replay
// log through the publish client, whose map must have moved too (a node
// that only reads would otherwise find the dead master and clear).
func (h *hub) refreshTopology() {
	reload(h.sub)
	if h.pub != h.sub {
		reload(h.pub)
	}
}

// reload asks c, if it is a cluster client, to reload its slot map in the
// background.
func reload(c goredis.UniversalClient) {
	if cc, ok := c.(*goredis.ClusterClient); ok {
		cc.ReloadState(context.Background())
	}
}

// isReplyError reports an error reply from Redis, as opposed to a network
// or client error.
func isReplyError(err error) bool {
	var re goredis.Error
	return errors.As(err, &re) && !errors.Is(err, goredis.ErrClosed)
}
