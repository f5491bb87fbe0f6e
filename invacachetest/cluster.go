package invacachetest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/invalidation/drivers/memory"
)

// Cluster is a set of replicas of one cache in one test, linked by an
// in-process bus instead of Redis. Every replica runs the same invalidation
// protocol as with Redis (envelopes, sequence gaps, liveness pings,
// MaxStaleness); only the transport differs.
type Cluster[V any] struct {
	bus   *memory.Bus
	nodes []*Node[V]
}

// Node is one replica of a Cluster: a Cache[V] with fault controls on its
// link to the bus. The faults act on this replica's link only.
type Node[V any] struct {
	invacache.Cache[V]
	link *memory.Conn
}

// NewCluster starts n replicas built from cfg (see StartCluster) and closes
// them when the test ends. It fails the test (t.Fatal) when a replica cannot
// be built.
func NewCluster[V any](t testing.TB, n int, cfg config.InvaCacheConfig) *Cluster[V] {
	t.Helper()
	c, err := StartCluster[V](n, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// StartCluster starts n replicas built from cfg, each with its own link to a
// new in-process bus; Close stops them. It is NewCluster for code that has no
// *testing.T (a TestMain, an example, a demo program). cfg is copied and
// never modified; its Invalidation settings (MaxStaleness, GapStrategy, ...)
// apply to every replica, whose Driver is its link (so a configured Type and
// driver settings are not used). A nil cfg.Invalidation means the defaults.
func StartCluster[V any](n int, cfg config.InvaCacheConfig) (*Cluster[V], error) {
	if n < 1 {
		return nil, fmt.Errorf("invacachetest: StartCluster: n = %d, want >= 1: %w", n, invacache.ErrInvalidArgument)
	}
	c := &Cluster[V]{bus: memory.NewBus()}
	for i := range n {
		link := c.bus.Connect()
		var inv config.InvalidationConfig
		if cfg.Invalidation != nil {
			inv = *cfg.Invalidation
		}
		inv.Driver = link
		ncfg := cfg
		ncfg.Invalidation = &inv
		cache, err := invacache.NewCache[V](ncfg)
		if err != nil {
			link.Close()
			c.Close()
			return nil, fmt.Errorf("invacachetest: StartCluster: replica %d: %w", i, err)
		}
		c.nodes = append(c.nodes, &Node[V]{Cache: cache, link: link})
	}
	return c, nil
}

// Close closes every replica (flushing what they still have to publish),
// then the bus. It is idempotent.
func (c *Cluster[V]) Close() error {
	var errs []error
	for _, n := range c.nodes {
		errs = append(errs, n.Cache.Close(), n.link.Close())
	}
	errs = append(errs, c.bus.Close())
	return errors.Join(errs...)
}

// Node returns replica i (0 <= i < Len).
func (c *Cluster[V]) Node(i int) *Node[V] {
	if i < 0 || i >= len(c.nodes) {
		panic(fmt.Sprintf("invacachetest: Node(%d) of a cluster of %d", i, len(c.nodes)))
	}
	return c.nodes[i]
}

// Nodes returns every replica, in order.
func (c *Cluster[V]) Nodes() []*Node[V] { return append([]*Node[V](nil), c.nodes...) }

// Len is the number of replicas.
func (c *Cluster[V]) Len() int { return len(c.nodes) }

// Disconnect takes the replica's link down, as a closed Redis connection
// would: the replica stops serving at once (with MaxStaleness on), its
// publishes fail and are retried, and what peers publish meanwhile is lost
// to it. No-op when already down.
func (n *Node[V]) Disconnect() { n.link.Disconnect() }

// Reconnect brings the link back. The replica handles the resubscribe as a
// gap (it catches up from the bus's log, or clears its cache with the
// default GapStrategy) before it serves again. No-op when not down.
func (n *Node[V]) Reconnect() { n.link.Reconnect() }

// Drop silently loses the next count messages arriving at the replica, as
// Pub/Sub does for a subscriber that misses them. The next message from the
// same writer reveals the sequence gap: the replica catches up from the
// bus's log, or clears.
func (n *Node[V]) Drop(count int) { n.link.DropNext(count) }

// FailPublish makes the replica's next count publishes fail; the replica
// retries them with backoff.
func (n *Node[V]) FailPublish(count int) { n.link.FailPublish(count) }

// Stall holds the messages arriving at the replica and leaves its liveness
// pings unanswered, as a half-open TCP link or a stuck server would, until
// Unstall. Past MaxStaleness the replica stops serving cached values.
func (n *Node[V]) Stall() { n.link.Stall() }

// Unstall ends a stall: held messages are delivered in order and pings
// resume, so the replica serves again once the link is proven alive.
func (n *Node[V]) Unstall() { n.link.Unstall() }
