package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/invalidation"
)

// ErrClosed is returned by Publish and Subscribe after Close.
var ErrClosed = errors.New("redis: driver closed")

// TypeName is the name the driver registers under, for
// InvalidationConfig.Type.
const TypeName = "redis"

func init() {
	invalidation.MustRegister(TypeName, factory)
}

// factory builds a driver from the DriverConfig map, which also carries the
// typed settings (config.Resolve turns InvalidationConfig.Redis into it).
func factory(spec invalidation.Spec) (invalidation.Driver, error) {
	cfg, err := decodeConfig(spec.Options)
	if err != nil {
		return nil, err
	}
	return New(cfg, WithLogger(spec.Logger))
}

// Option tunes New.
type Option func(*options)

type options struct {
	logger          *slog.Logger
	maxMessageBytes int  // NewPublisher only
	noProbe         bool // NewPublisher: do not connect in New (see probe)
}

// WithMaxMessageBytes sets the size a Publisher's batches are split below
// (InvalidationConfig.MaxMessageBytes for a cache; 0 means its default,
// config.DefaultMaxMessageBytes). New ignores it.
func WithMaxMessageBytes(n int) Option {
	return func(o *options) { o.maxMessageBytes = n }
}

// WithLogger sets the logger for link state changes and dropped
// connections. Nil (the default) is silent.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// Driver is the Redis Pub/Sub invalidation driver. It implements
// invalidation.Driver, invalidation.Replayer (its replay log; see the
// package doc) and invalidation.ConnectTimeouter. Drivers built from
// equal connection settings, in one process, share one publish pool and one
// subscription connection; each Subscribe attaches one handler to it.
type Driver struct {
	hub         *hub
	channel     string
	sharded     bool
	dialTimeout time.Duration

	mu       sync.Mutex
	subs     map[*subscription]struct{} // guarded by mu
	closed   bool                       // guarded by mu
	inflight sync.WaitGroup             // publishes left running by a cancelled ctx; Add under mu while !closed

	// The replay log (see replay.go).
	noReplay                     bool
	window                       time.Duration
	logKeys                      []string // stream, epoch, meta, checkpoints (see logscripts.go)
	streamKey, epochKey, markKey string   // logKeys[0], [1], [4]
	maxLogBytes                  int64
	stats                        driverStats
	warned                       warner
	markDeniedUntil              atomic.Pointer[time.Time] // the unlogged script was refused (NOPERM): publish plainly until then
	log                          *slog.Logger
	lastErr                      atomic.Pointer[error] // the last publish's error; nil after a success
	noProbe                      bool                  // New does not probe (NewPublisher: it does not connect)
	addedMu                      sync.Mutex
	addedEpoch                   string // guarded by addedMu: epoch of added
	added                        int64  // guarded by addedMu: greatest entries-added seen
}

var (
	_ invalidation.Driver           = (*Driver)(nil)
	_ invalidation.ConnectTimeouter = (*Driver)(nil)
)

// New returns a driver for cfg (defaults applied to zero fields). It does
// not connect: Subscribe connects in the background and Publish on first
// use. Invalid settings return an error that names the field and wraps
// config.ErrInvalidConfig. With cfg.Client set, the driver uses that client
// (and does not close it); otherwise drivers built from equal connection
// settings in one process share connections (see the package doc).
func New(cfg Config, opts ...Option) (*Driver, error) {
	if cfg.Client != nil {
		return newWithClient(cfg, opts)
	}
	c, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	o := buildOptions(opts)
	h, err := hubs.acquire(keyOf(c), o.logger, func() (*hub, error) {
		tracker := newConnTracker()
		pub, err := newClient(c, tracker.dialer)
		if err != nil {
			return nil, err
		}
		var watch *masterWatch
		var wrapSub func(dialFunc) dialFunc
		if c.MasterName != "" {
			if watch, err = newMasterWatch(c); err != nil {
				_ = pub.Close()
				return nil, err
			}
			wrapSub = watch.dialer
		}
		sub, err := newClient(c, wrapSub)
		if err != nil {
			_ = pub.Close()
			watch.close()
			return nil, err
		}
		return &hub{pub: pub, sub: sub, tracker: tracker, ownsClient: true, sharded: c.ShardedPubSub, watch: watch}, nil
	})
	if err != nil {
		return nil, err
	}
	return finish(newDriver(h, c, o))
}

// finish checks, when Redis answers, that the user may run what the driver
// needs (see probe); on failure it releases the driver.
func finish(d *Driver) (*Driver, error) {
	if d.noProbe {
		return d, nil
	}
	if err := d.probe(); err != nil {
		_ = d.Close()
		return nil, err
	}
	return d, nil
}

// newWithClient is New for a caller's client: of cfg only Channel,
// ShardedPubSub, DialTimeout, ReplayWindow, MaxLogBytes and DisableReplay
// apply.
func newWithClient(cfg Config, opts []Option) (*Driver, error) {
	client := cfg.Client
	c, err := Config{Channel: cfg.Channel, DialTimeout: cfg.DialTimeout, ShardedPubSub: cfg.ShardedPubSub,
		ReplayWindow: cfg.ReplayWindow, MaxLogBytes: cfg.MaxLogBytes, DisableReplay: cfg.DisableReplay}.resolve()
	if err != nil {
		return nil, err
	}
	o := buildOptions(opts)
	c.Client = client
	h, err := hubs.acquire(clientKeyOf(c), o.logger, func() (*hub, error) {
		return &hub{pub: client, sub: client, sharded: c.ShardedPubSub}, nil
	})
	if err != nil {
		return nil, err
	}
	return finish(newDriver(h, c, o))
}

func buildOptions(opts []Option) options {
	var o options
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	return o
}

func newDriver(h *hub, c Config, o options) *Driver {
	d := &Driver{hub: h, channel: c.Channel, sharded: c.ShardedPubSub, dialTimeout: c.DialTimeout, subs: map[*subscription]struct{}{},
		noReplay: c.DisableReplay, window: c.ReplayWindow, maxLogBytes: c.MaxLogBytes, log: o.logger, noProbe: o.noProbe}
	d.logKeys = logKeys(c.Channel)
	d.streamKey, d.epochKey, d.markKey = d.logKeys[0], d.logKeys[1], d.logKeys[4]
	return d
}

// Channel returns the Pub/Sub channel the driver publishes to and listens on.
func (d *Driver) Channel() string { return d.channel }

// Client returns the go-redis client the driver publishes with (shared with
// other drivers of equal settings; do not close it).
func (d *Driver) Client() goredis.UniversalClient { return d.hub.pub }

// ConnectTimeout returns DialTimeout: NewCache waits at most this long for
// the first link-up, then returns a cache whose link is still down while the
// driver keeps connecting in the background.
func (d *Driver) ConnectTimeout() time.Duration { return d.dialTimeout }

// Publish sends the payloads in one round trip and returns the first error:
// one call of the replay log's script, which appends each payload to the log
// and publishes it in a frame with its log position (PUBLISH, or SPUBLISH
// with ShardedPubSub); with DisableReplay, a pipeline of plain PUBLISH
// (SPUBLISH). It does not retry beyond the
// client's MaxRetries: the engine's outbox retries with backoff. It returns
// when ctx is done even if the network is stuck (a blackholed link): the
// I/O then finishes in the background within the client's read timeout.
func (d *Driver) Publish(ctx context.Context, payloads [][]byte) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return ErrClosed
	}
	if len(payloads) == 0 {
		d.mu.Unlock()
		return nil
	}
	if err := ctx.Err(); err != nil {
		d.mu.Unlock()
		return err
	}
	if ctx.Done() == nil || d.hub.tracker != nil {
		d.mu.Unlock()
		return d.publishInline(ctx, payloads)
	}
	// A caller's client: its connections are not ours to interrupt, so
	// the I/O runs on a goroutine that a cancelled ctx leaves behind.
	d.inflight.Add(1)
	d.mu.Unlock()
	done := make(chan error, 1)
	go func() {
		defer d.inflight.Done()
		done <- d.publish(ctx, payloads)
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("redis: publish: %w", ctx.Err())
	}
}

// publishInline publishes on the caller's goroutine (no handoff: this is the
// latency path). If ctx is cancelled meanwhile, the publish connections
// blocked in a read are interrupted, so a stuck link cannot hold the caller
// beyond the cancellation.
func (d *Driver) publishInline(ctx context.Context, payloads [][]byte) error {
	if d.hub.tracker == nil {
		return d.publish(ctx, payloads)
	}
	stop := context.AfterFunc(ctx, d.hub.tracker.interruptReads)
	err := d.publish(ctx, payloads)
	if !stop() && err != nil {
		return fmt.Errorf("redis: publish: %w (%v)", ctx.Err(), err)
	}
	return err
}

func (d *Driver) publish(ctx context.Context, payloads [][]byte) error {
	err := d.send(ctx, payloads)
	if err != nil {
		// After a failover a cluster client keeps dialling the dead master
		// until its slot map is reloaded (else only every 10s).
		if cc, ok := d.hub.pub.(*goredis.ClusterClient); ok {
			cc.ReloadState(context.WithoutCancel(ctx))
		}
	}
	return err
}

func (d *Driver) send(ctx context.Context, payloads [][]byte) error {
	var err error
	if d.noReplay {
		err = d.sendUnlogged(ctx, payloads, nil)
	} else {
		err = d.sendLogged(ctx, payloads)
	}
	if err != nil {
		d.stats.publishErrors.Add(1)
		d.lastErr.Store(&err)
		d.warn("publish failed", "redis: a publish failed (the outbox retries it; replicas cannot learn of it until it passes)", "err", err)
	} else if d.lastErr.Load() != nil {
		d.lastErr.Store(nil)
	}
	return err
}

// lastPublishErr returns the error of the last publish if it failed, else nil.
func (d *Driver) lastPublishErr() error {
	if p := d.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

// publishPlain publishes payloads outside the log, with no mark: a PUBLISH
// (SPUBLISH) each, in one pipeline.
func (d *Driver) publishPlain(ctx context.Context, payloads [][]byte) error {
	var c goredis.Cmdable = d.hub.pub
	if cc, ok := d.hub.pub.(*goredis.ClusterClient); ok && !d.sharded {
		// PUBLISH has no key, so go-redis spreads it over the masters; a
		// message sent through another node's cluster bus then arrives after
		// later ones sent to the node the subscribers sit on, and a reorder
		// reads as a loss (a whole-cache clear). The subscription lives on
		// the master of the channel's slot: publishing there keeps this
		// node's messages in order.
		node, err := cc.MasterForKey(ctx, d.channel)
		if err != nil {
			return fmt.Errorf("redis: publish: %w", err)
		}
		c = node
	}
	if len(payloads) == 1 {
		var err error
		if d.sharded {
			err = c.SPublish(ctx, d.channel, payloads[0]).Err()
		} else {
			err = c.Publish(ctx, d.channel, payloads[0]).Err()
		}
		if err != nil {
			return fmt.Errorf("redis: publish: %w", err)
		}
		return nil
	}
	_, err := c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, pl := range payloads {
			if d.sharded {
				p.SPublish(ctx, d.channel, pl)
			} else {
				p.Publish(ctx, d.channel, pl)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis: publish: %w", err)
	}
	return nil
}

// Subscribe attaches h to the driver's channel. It does not wait for Redis:
// h.HandleLinkUp reports the (re)established subscription, h.HandleAliveAt
// every PONG through it, h.HandleLinkDown its loss. Handler methods are
// called from the shared connection's reader goroutine, one at a time; a
// handler must not call Close of its own Subscription.
func (d *Driver) Subscribe(h invalidation.Handler, opts invalidation.SubscribeOptions) (invalidation.Subscription, error) {
	if h == nil {
		return nil, fmt.Errorf("redis: Subscribe: nil handler: %w", config.ErrInvalidConfig)
	}
	if opts.PingInterval < 0 {
		return nil, invalidf("PingInterval", "must not be negative, got %v", opts.PingInterval)
	}
	ping := opts.PingInterval
	if ping == 0 {
		ping = DefaultPingInterval
	}
	sub := &subscription{hub: d.hub, driver: d, channel: d.channel, h: h, ping: ping}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, ErrClosed
	}
	d.subs[sub] = struct{}{}
	if testHookBeforeAttach != nil {
		testHookBeforeAttach()
	}
	// Attached under d.mu, so a concurrent Close either refuses this
	// Subscribe or finds the subscription attached and detaches it: never
	// an orphan that keeps the shared session alive.
	d.hub.attach(sub)
	d.mu.Unlock()
	return sub, nil
}

// testHookBeforeAttach, when set by a test, runs in Subscribe just before the
// subscription attaches to the hub.
var testHookBeforeAttach func()

// Close detaches the handler; no handler method runs after it returns.
func (sub *subscription) Close() error {
	sub.callMu.Lock()
	already := sub.closed
	sub.closed = true
	sub.callMu.Unlock()
	if already {
		return nil
	}
	sub.hub.detach(sub)
	d := sub.driver
	d.mu.Lock()
	delete(d.subs, sub)
	d.mu.Unlock()
	return nil
}

// Close closes the driver's subscriptions and releases its share of the
// connections (the last driver on them closes them, unless the client was
// the caller's). It is idempotent.
func (d *Driver) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	subs := make([]*subscription, 0, len(d.subs))
	for s := range d.subs {
		subs = append(subs, s)
	}
	d.mu.Unlock()
	for _, s := range subs {
		_ = s.Close()
	}
	err := d.hub.release() // closing the client (if last) aborts stuck publishes
	d.inflight.Wait()
	return err
}
