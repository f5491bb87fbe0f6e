package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/monotime"
	"github.com/halilbulentorhon/invacache-go/internal/wire"
	"github.com/halilbulentorhon/invacache-go/invalidation"
)

// Errors of the engine.
var (
	// ErrClosed is returned by Broadcast*, Flush and WaitLinkUp after Close.
	ErrClosed = errors.New("engine: closed")
	// ErrUnsent is wrapped by Close's error when queued broadcasts could not
	// be published within FlushTimeout and were dropped.
	ErrUnsent = errors.New("engine: queued invalidations not published before close")
	// ErrInvalidArgument is wrapped by BroadcastDelete's error for a key
	// that cannot be broadcast. It is invacache.ErrInvalidArgument (and the
	// Redis driver's), so callers of any layer test for one sentinel.
	ErrInvalidArgument = errors.New("invacache: invalid argument")
)

// CheckKey returns an error wrapping ErrInvalidArgument, naming the key's
// length and the limit, when key is longer than wire.MaxKeyBytes: every
// receiver would reject its envelope as too large and clear its whole
// cache, so such a key is refused at the call instead.
func CheckKey(key string) error {
	if len(key) > wire.MaxKeyBytes {
		return fmt.Errorf("key of %d bytes is longer than %d bytes, the longest an invalidation message carries: %w",
			len(key), wire.MaxKeyBytes, ErrInvalidArgument)
	}
	return nil
}

const (
	// MinPingInterval bounds the ping interval the engine asks the driver
	// for, so a tiny MaxStaleness does not turn into a ping storm.
	// It is a quarter of config.MinMaxStaleness, the shortest bound
	// config.Resolve accepts, so the interval is always MaxStaleness/4.
	MinPingInterval = config.MinMaxStaleness / 4
	// MaxOrigins bounds the per-origin sequence table. Past it the quarter
	// least recently heard from is forgotten, so well-formed garbage with
	// random origins cannot grow memory; a forgotten origin's next message
	// counts as a gap unless it is a sender's first (seq 1), so eviction
	// never hides a loss.
	MaxOrigins = 4096
)

// Target is the local cache the engine invalidates. Both methods are called
// on the driver's subscription goroutine, one call at a time, and must
// return quickly; keys is only valid during the call.
type Target interface {
	// InvalidateKeys drops local copies of keys a peer changed.
	InvalidateKeys(keys []string)
	// InvalidateAll drops the whole local cache (a peer's clear, or a gap).
	InvalidateAll()
}

// A Target may also implement Clean() bool, reporting that nothing was
// cached since its last InvalidateAll (a value stored concurrently with the
// call may be missed: it counts as stored after it). The engine then counts
// a gap's clear as collapsed and keeps its cursor instead of reading the
// log's head: repeated gaps on an empty cache cost the bus nothing.

// Config configures an Engine. Zero durations and sizes take the defaults of
// package config, and values are checked by config.Resolve, as for a cache.
type Config struct {
	// Driver is the bus; required. The engine never closes it.
	Driver invalidation.Driver
	// Logger receives warnings and errors; nil means silent.
	Logger *slog.Logger
	// MaxStaleness bounds how long the node serves without proof that its
	// subscription is alive; 0 disables the bound (Serving always true).
	MaxStaleness time.Duration
	// OutageStaleness, when set (at least MaxStaleness), replaces
	// MaxStaleness while the driver reports the bus unreachable
	// (invalidation.ReachHandler): the node serves until its last proof of
	// life plus OutageStaleness. 0 (the default) turns it off.
	OutageStaleness time.Duration
	// GapStrategy is config.GapClear ("clear", the default when empty) or
	// config.GapNone ("none").
	GapStrategy string
	// RetryBackoffMin and RetryBackoffMax bound the jittered, doubling delay
	// between publish retries.
	RetryBackoffMin, RetryBackoffMax time.Duration
	// MaxMessageBytes is the size batches are split below.
	MaxMessageBytes int
	// FlushTimeout bounds how long Close waits for queued broadcasts.
	FlushTimeout time.Duration
	// OutboxMaxKeys and OutboxMaxBytes bound the keys waiting to be
	// published (distinct keys, and the sum of their lengths); past either,
	// the waiting keys collapse into one clear (Stats.OutboxOverflows).
	OutboxMaxKeys, OutboxMaxBytes int
}

// resolve checks c and fills its defaults with the checks of package config
// (config.Resolve), the one place these options are checked.
func (c *Config) resolve() error {
	if c.Driver == nil {
		return fmt.Errorf("engine: Driver is nil: %w", config.ErrInvalidConfig)
	}
	r, err := config.Resolve(config.InvaCacheConfig{Invalidation: &config.InvalidationConfig{
		Driver:              c.Driver,
		MaxStaleness:        c.MaxStaleness,
		OutageStaleness:     c.OutageStaleness,
		DisableMaxStaleness: c.MaxStaleness == 0,
		GapStrategy:         c.GapStrategy,
		RetryBackoffMin:     c.RetryBackoffMin,
		RetryBackoffMax:     c.RetryBackoffMax,
		MaxMessageBytes:     c.MaxMessageBytes,
		FlushTimeout:        c.FlushTimeout,
		OutboxMaxKeys:       c.OutboxMaxKeys,
		OutboxMaxBytes:      c.OutboxMaxBytes,
	}})
	if err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	ic := r.Invalidation
	c.GapStrategy = ic.GapStrategy
	c.RetryBackoffMin, c.RetryBackoffMax = ic.RetryBackoffMin, ic.RetryBackoffMax
	c.MaxMessageBytes = ic.MaxMessageBytes
	c.FlushTimeout = ic.FlushTimeout
	c.OutboxMaxKeys, c.OutboxMaxBytes = ic.OutboxMaxKeys, ic.OutboxMaxBytes
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Stats is a snapshot of an engine's counters.
type Stats struct {
	BroadcastsQueued  uint64 // keys and clears requested through Broadcast*
	KeysSent          uint64 // keys in published messages (after coalescing)
	ClearsSent        uint64 // clears published
	MessagesSent      uint64 // payloads published
	PublishRetries    uint64 // publish attempts after a failure
	PublishFailures   uint64 // errors returned by the driver's Publish
	BroadcastsDropped uint64 // keys (a clear counts 1) lost at Close
	OutboxOverflows   uint64 // times the waiting keys passed OutboxMaxKeys or OutboxMaxBytes and collapsed into one clear

	MessagesReceived uint64 // payloads delivered by the subscription
	MessagesApplied  uint64 // envelopes and raw payloads applied to the Target
	IgnoredOwn       uint64 // own envelopes ignored (self-suppression)
	RawKeys          uint64 // raw payloads (a key, or empty = clear)
	Malformed        uint64 // envelopes that failed to decode (not unknown versions)
	Gaps             uint64 // possible losses: link up, sequence jump, unknown version, malformed, log id backwards or epoch change, liveness lapse
	ClearsOnGap      uint64 // InvalidateAll calls because of a gap (the gaps not caught up)
	CatchUps         uint64 // gaps recovered by replaying the driver's log, without a clear
	KeysReplayed     uint64 // keys invalidated from replayed log entries
	ClearsCollapsed  uint64 // gap clears that changed nothing (nothing cached since the last clear): not in ClearsOnGap or ClearsByReason
	OutageReads      uint64 // reads served past MaxStaleness since the last proof of life, under OutageStaleness while the bus was unreachable

	// ClearsByReason counts whole-cache clears by reason (the Clear*
	// constants; ClearPeer is a peer's Clear, the others are gaps). Only
	// reasons that occurred are present; the map is the caller's.
	ClearsByReason map[string]uint64

	// PublishLatency* time each published batch from the request of its
	// oldest broadcast to the driver accepting it (outbox wait, retries and
	// the publish round trip): a count, a sum and cumulative counts per
	// LatencyBounds.
	PublishLatencyCount   uint64
	PublishLatencySum     time.Duration
	PublishLatencyBuckets [LatencyBuckets]uint64

	OutboxDepth int           // keys (a clear counts 1) queued or being published
	LinkUp      bool          // the subscription is established
	Outage      bool          // the driver reports the bus unreachable (link down, connecting fails)
	Serving     bool          // Serving() at the time of the snapshot
	LastAlive   time.Time     // last proof of a live subscription (zero: never)
	SinceAlive  time.Duration // time since LastAlive (0 when never)
}

// counters are updated atomically from the caller, publisher and
// subscription goroutines.
type counters struct {
	keysSent, clearsSent, msgsSent, retries, failures, dropped       atomic.Uint64
	overflows                                                        atomic.Uint64
	received, applied, ignoredOwn, raw, malformed, gaps, clearsOnGap atomic.Uint64
	catchUps, keysReplayed, clearsCollapsed, outageReads             atomic.Uint64
	pubLatency                                                       latencyHist
	clears                                                           [len(clearReasons)]atomic.Uint64 // by clearReasons index
}

// originState is what the engine remembers of one peer.
type originState struct {
	seq  uint64 // highest sequence number applied since the last clear or failed catch-up
	seen uint64 // value of Engine.tick when last heard from, for eviction
}

// Engine runs the invalidation protocol for one node. Create it with New.
type Engine struct {
	cfg    Config
	target Target
	log    *slog.Logger
	id     uint64

	// mu guards the outbox fields below it. Callers hold it only to append
	// a key: coalescing is the publisher's work (see outbox).
	mu           sync.Mutex
	pending      outbox        // keys queued since the publisher took the last batch
	pendingClear bool          // a clear is queued; it subsumes keys
	pendingSince int64         // clock.Mono() when the pending batch got its first broadcast, if pendingTimed
	pendingTimed bool          // pendingSince is set (the pending batch is not empty)
	inflight     int           // keys (clear = 1) of the batch being published
	queued       uint64        // Stats.BroadcastsQueued
	awake        bool          // the publisher was kicked and has not found the outbox empty since
	enqGen       uint64        // bumped by every Broadcast* that queued something
	doneGen      uint64        // every enqueue with generation <= doneGen was published
	progress     chan struct{} // closed and replaced when doneGen advances or the loop stops
	closed       bool          // Close was called: Broadcast* fail
	loopStopped  bool          // the publisher exited: Flush cannot progress

	wake      chan struct{} // capacity 1: the outbox has work
	pubCtx    context.Context
	pubCancel context.CancelFunc // stops the publisher (and its in-flight Publish)
	loopDone  chan struct{}      // closed when the publisher exited
	closeDone chan struct{}      // closed when Close finished
	linked    chan struct{}      // closed at the first HandleLinkUp
	linkOnce  sync.Once
	// refused is closed when the driver refused the subscription for a
	// reason only a configuration change fixes (HandleLinkDown with an error
	// wrapping config.ErrInvalidConfig) before the first HandleLinkUp;
	// refusedErr is that error, written before the close.
	refused    chan struct{}
	refusedErr error
	refuseOnce sync.Once
	// servingOn is made by a WaitServing caller and closed (then set to
	// nil) each time serving is turned on. Guarded by liveMu.
	servingOn chan struct{}

	sub invalidation.Subscription

	// Owned by the subscription goroutine (the driver serializes Handler
	// calls): per-origin sequence tracking.
	origins map[uint64]originState
	evicted bool // origins were evicted since the baselines last restarted
	tick    uint64
	gapLog  map[string]*logWindow // by reason (a handful of constants)

	// Owned by the subscription goroutine: the replay log (rule 3).
	replayer  invalidation.Replayer // the driver's log; nil when it has none
	cursor    invalidation.LogPos   // last log entry applied (or covered by a clear), when hasCursor
	hasCursor bool
	noCursor  string              // the clear reason while !hasCursor
	lastLive  invalidation.LogPos // last logged message received since the link-up, when hasLive
	hasLive   bool
	unlogged  bool        // a peer's envelope or a raw key arrived outside the log since the last clear
	reads     tokenBucket // log reads left for gap handling (GapReadsPerSecond)

	_         [64]byte     // serving is read by every Get: off the lines written per message
	serving   atomic.Bool  // the hot-path answer of Serving, with deadline
	lastAlive atomic.Int64 // clock.Mono() reading of the last proof of life; 0 = never
	// deadline is when serving must end (lastAlive + MaxStaleness, or +
	// OutageStaleness during an outage) on the same monotonic clock. It is
	// written before serving is turned on, under liveMu.
	deadline  atomic.Int64
	linkUpNow atomic.Bool // mirror of linkUp for Stats
	outageNow atomic.Bool // mirror of outage for Stats
	_         [64]byte

	// liveMu guards the liveness fields below and serializes the expiry
	// timer against proofs of life.
	liveMu      sync.Mutex
	linkUp      bool        // between HandleLinkUp and HandleLinkDown
	outage      bool        // the driver reported the bus unreachable since the link went down
	expired     bool        // liveness lapsed since the last proof: clear before serving
	liveStopped bool        // Close stopped the timer; never re-arm it
	timer       *time.Timer // fires at lastAlive + MaxStaleness

	st counters

	// clock is the time base of every liveness decision (its monotonic
	// reading; the wall clock only renders Stats.LastAlive). The zero value
	// reads the system clocks; tests replace it before the first proof to
	// step the wall clock.
	clock monotime.Clock
}

// New validates cfg, subscribes to cfg.Driver (without waiting for the
// link: see WaitLinkUp) and starts the publisher goroutine.
func New(cfg Config, t Target) (*Engine, error) {
	if err := cfg.resolve(); err != nil {
		return nil, err
	}
	if t == nil {
		return nil, fmt.Errorf("engine: Target is nil: %w", config.ErrInvalidConfig)
	}
	e := newEngine(cfg)
	e.target = t
	e.replayer, _ = cfg.Driver.(invalidation.Replayer)
	var opts invalidation.SubscribeOptions
	if cfg.MaxStaleness > 0 {
		e.timer = time.AfterFunc(time.Hour, e.expire)
		e.timer.Stop()
		opts.PingInterval = max(cfg.MaxStaleness/4, MinPingInterval)
	} else {
		e.serving.Store(true)
	}
	sub, err := cfg.Driver.Subscribe(handler{e}, opts)
	if err != nil {
		e.pubCancel()
		return nil, fmt.Errorf("engine: subscribe: %w", err)
	}
	e.sub = sub
	go e.publishLoop()
	return e, nil
}

// NewPublisher starts an engine that only broadcasts: the outbox, the
// envelope and the publisher loop of New, with no subscription and no
// Target. It is for a process that invalidates every node's cache but holds
// none (MaxStaleness and GapStrategy do not apply; Serving reports false).
// Its origin id is its own, so receivers track its sequence apart.
func NewPublisher(cfg Config) (*Engine, error) {
	cfg.MaxStaleness = 0
	if err := cfg.resolve(); err != nil {
		return nil, err
	}
	e := newEngine(cfg)
	go e.publishLoop()
	return e, nil
}

func newEngine(cfg Config) *Engine {
	e := &Engine{
		cfg:       cfg,
		log:       cfg.Logger,
		id:        rand.Uint64(),
		progress:  make(chan struct{}),
		wake:      make(chan struct{}, 1),
		loopDone:  make(chan struct{}),
		closeDone: make(chan struct{}),
		linked:    make(chan struct{}),
		refused:   make(chan struct{}),
		origins:   map[uint64]originState{},
		gapLog:    map[string]*logWindow{},
		noCursor:  ClearNoCursor,
	}
	e.pubCtx, e.pubCancel = context.WithCancel(context.Background())
	return e
}

// NodeID is this node's random origin id, carried by its messages.
func (e *Engine) NodeID() uint64 { return e.id }

// Serving reports whether the node may serve cached values: always with
// MaxStaleness 0, else only while the subscription was proven alive within
// MaxStaleness and any needed clear has run. Two atomic loads and, while
// serving with the bound on, one monotonic clock read: the timer that turns
// serving off fires late when the process is starved (CPU throttling, a VM
// pause, an overloaded machine), and the reads that run first after such a
// stall must not serve on the old flag. When it finds the deadline passed
// before the timer ran, it runs the timer's expiry itself (unless liveMu is
// busy: its holder decides), so the flag that MayServe reads turns off too.
func (e *Engine) Serving() bool {
	if !e.serving.Load() {
		return false
	}
	if e.timer == nil || e.clock.Mono() < e.deadline.Load() {
		return true
	}
	if e.liveMu.TryLock() {
		e.liveMu.Unlock()
		e.expire()
	}
	return false
}

// ServingWithin is Serving for one read about to be served, after its
// lookup, with the deadline MayServe returned before that lookup. With the
// bound on it reads the clock once: a lookup at or past either that deadline
// or the current one is not served, since a recovery that ran between the
// lookup and this check may have moved the deadline on after removing the
// value the lookup read. With the bound off it reads no clock. A read it
// allows past MaxStaleness since the last proof (under OutageStaleness) is
// counted in Stats.OutageReads.
func (e *Engine) ServingWithin(deadline int64) bool {
	if !e.serving.Load() {
		return false
	}
	if e.timer == nil {
		return true
	}
	now := e.clock.Mono()
	if now >= deadline || now >= e.deadline.Load() {
		return false
	}
	if e.cfg.OutageStaleness > 0 && now >= e.lastAlive.Load()+int64(e.cfg.MaxStaleness) {
		e.st.outageReads.Add(1)
	}
	return true
}

// ServingStrict is Serving under MaxStaleness alone, even during an outage:
// whether a value loaded now may be cached. A load's result is not cached
// while the node may have missed invalidations for longer than MaxStaleness.
func (e *Engine) ServingStrict() bool {
	if !e.serving.Load() {
		return false
	}
	if e.timer == nil {
		return true
	}
	now := e.clock.Mono()
	return now < e.deadline.Load() && now < e.lastAlive.Load()+int64(e.cfg.MaxStaleness)
}

// MayServe is the serving state before a lookup, and the deadline then in
// force. The cache checks it before its lookup, so the value it reads comes
// after whatever was applied before serving resumed, and passes the
// deadline to ServingWithin after the lookup. The flag may still be
// set past the deadline (the timer that clears it runs late on a starved
// process): the deadline taken here keeps such a lookup from being served
// on a deadline a later proof of life set.
func (e *Engine) MayServe() (deadline int64, ok bool) {
	if !e.serving.Load() {
		return 0, false
	}
	return e.deadline.Load(), true
}

// WaitLinkUp returns nil once the subscription has been established at
// least once, ctx's error when ctx ends first, ErrClosed after Close. When
// the driver refused the subscription for a configuration reason before it
// was ever established (a link-down error wrapping config.ErrInvalidConfig,
// such as a channel the Redis ACL user may not use), it returns that error.
func (e *Engine) WaitLinkUp(ctx context.Context) error {
	if e.pubCtx.Err() != nil {
		return ErrClosed
	}
	select {
	case <-e.linked:
		return nil
	default:
	}
	select {
	case <-e.linked:
		return nil
	case <-e.refused:
		return fmt.Errorf("engine: subscription refused: %w", e.refusedErr)
	case <-e.pubCtx.Done():
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("engine: waiting for the subscription: %w", ctx.Err())
	}
}

// WaitServing returns nil once the subscription has been established at
// least once and Serving reports true, ErrClosed after Close (also when Close
// comes during the wait), ctx.Err() when ctx ends first. A node that serves
// when called returns nil even with ctx already done.
func (e *Engine) WaitServing(ctx context.Context) error {
	for {
		if e.pubCtx.Err() != nil {
			return ErrClosed
		}
		e.liveMu.Lock()
		if e.servingOn == nil {
			e.servingOn = make(chan struct{})
		}
		on := e.servingOn
		e.liveMu.Unlock()
		select {
		case <-e.linked:
			if e.Serving() {
				return nil
			}
		default:
			on = e.linked // MaxStaleness 0 serves at once; wait for the link
		}
		select {
		case <-on:
		case <-e.pubCtx.Done():
			return ErrClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// servingTurnedOnLocked wakes the WaitServing callers. The caller holds
// liveMu and has just turned serving on.
func (e *Engine) servingTurnedOnLocked() {
	if e.servingOn != nil {
		close(e.servingOn)
		e.servingOn = nil
	}
}

// BroadcastDelete queues the invalidation of keys on every peer. It never
// blocks on the network: the caller appends to the outbox under a short
// lock, and keys already queued coalesce when the publisher takes them. It
// fails with ErrClosed, or with an error wrapping ErrInvalidArgument when a
// key is too long to broadcast (CheckKey); then nothing is queued.
func (e *Engine) BroadcastDelete(keys ...string) error {
	for _, k := range keys {
		if err := CheckKey(k); err != nil {
			return fmt.Errorf("engine: %w", err)
		}
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrClosed
	}
	if len(keys) == 0 {
		e.mu.Unlock()
		return nil
	}
	// Keys queued behind a pending clear are covered by it: the clear
	// leaves after they were queued and receivers apply it as a whole.
	overflow := false
	if !e.pendingClear {
		for _, k := range keys {
			e.pending.add(k)
		}
		if overflow = e.overCapLocked(); overflow {
			e.pendingClear = true
			e.pending.reset()
		}
	}
	e.queued += uint64(len(keys))
	err := e.enqueuedLocked()
	if overflow {
		e.st.overflows.Add(1)
		e.log.Warn("engine: outbox over its bound; its keys collapse into one clear of every peer",
			"maxKeys", e.cfg.OutboxMaxKeys, "maxBytes", e.cfg.OutboxMaxBytes)
	}
	return err
}

// overCapLocked reports whether the waiting keys pass OutboxMaxKeys or
// OutboxMaxBytes once duplicates are removed. Duplicates are removed only
// when the raw count passes a bound, and then only those queued since the
// last check, so the cost stays O(1) per key. The caller holds mu.
func (e *Engine) overCapLocked() bool {
	over := func() bool {
		return e.pending.len() > e.cfg.OutboxMaxKeys || e.pending.bytes > e.cfg.OutboxMaxBytes
	}
	if !over() {
		return false
	}
	e.pending.coalesce()
	return over()
}

// BroadcastClear queues a clear of every peer's cache; it subsumes the keys
// queued before it and those queued after it until the publisher takes it.
// It never blocks on the network and fails only with ErrClosed.
func (e *Engine) BroadcastClear() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrClosed
	}
	e.pendingClear = true
	e.pending.reset()
	e.queued++
	return e.enqueuedLocked()
}

// enqueuedLocked ends a Broadcast* that queued something: it advances the
// generation Flush waits for, releases e.mu and wakes the publisher unless
// it is already awake (a channel operation per broadcast would cost the
// caller more than the append).
func (e *Engine) enqueuedLocked() error {
	e.enqGen++
	if !e.pendingTimed {
		// One clock reading per batch, not per broadcast.
		e.pendingSince, e.pendingTimed = e.clock.Mono(), true
	}
	kick := !e.awake
	e.awake = true
	e.mu.Unlock()
	if kick {
		select {
		case e.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// Flush waits until every broadcast queued before the call has been
// published. It returns ctx's error (wrapped) if ctx ends first, and
// ErrClosed if the engine stopped with those broadcasts unsent.
func (e *Engine) Flush(ctx context.Context) error {
	e.mu.Lock()
	target := e.enqGen
	for e.doneGen < target {
		if e.loopStopped {
			e.mu.Unlock()
			return ErrClosed
		}
		ch := e.progress
		e.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("engine: flush: %w", ctx.Err())
		}
		e.mu.Lock()
	}
	e.mu.Unlock()
	return nil
}

// advance records that generation gen was published (or, with stopped,
// that the publisher exited) and wakes Flush waiters.
func (e *Engine) advance(gen uint64, stopped bool) {
	e.mu.Lock()
	if stopped {
		e.loopStopped = true // inflight stays counted: Close reports it dropped
	} else {
		e.doneGen, e.inflight = gen, 0
	}
	close(e.progress)
	e.progress = make(chan struct{})
	e.mu.Unlock()
}

// publishLoop is the single publisher: it takes everything pending as one
// batch, coalesces its duplicate keys, publishes it (retrying until it
// succeeds or the engine stops) and repeats while there is work, so
// broadcasts arriving during a publish are group-committed into the next
// batch.
func (e *Engine) publishLoop() {
	defer close(e.loopDone)
	var (
		batch    outbox   // the batch taken from the outbox; swapped with e.pending
		payloads [][]byte // reused between batches (each is published before the next is encoded)
		buf      []byte
		seq      uint64 = 1
	)
	for {
		select {
		case <-e.pubCtx.Done():
			e.advance(0, true)
			return
		case <-e.wake:
		}
		for {
			e.mu.Lock()
			if !e.pendingClear && e.pending.empty() {
				e.awake = false // the next Broadcast* kicks
				e.mu.Unlock()
				break
			}
			clearAll, gen, since := e.pendingClear, e.enqGen, e.pendingSince
			batch, e.pending = e.pending, batch
			e.pendingClear, e.pendingTimed = false, false
			e.inflight = batch.len()
			if clearAll {
				e.inflight = 1 // its keys were dropped by BroadcastClear
			}
			e.mu.Unlock()

			if n := batch.len(); !clearAll && n != len(batch.keys) {
				batch.coalesce()
				if len(batch.keys) != n {
					e.mu.Lock()
					e.inflight = len(batch.keys)
					e.mu.Unlock()
				}
			}
			keys := batch.keys
			var next uint64
			payloads, buf, next = wire.AppendBatches(payloads[:0], buf[:0], e.id, seq, clearAll, keys, e.cfg.MaxMessageBytes)
			if !e.publish(payloads, len(keys)) {
				e.advance(0, true)
				return
			}
			seq = next
			e.st.pubLatency.observe(time.Duration(e.clock.Mono() - since))
			if clearAll {
				e.st.clearsSent.Add(1)
			} else {
				e.st.keysSent.Add(uint64(len(keys)))
			}
			e.st.msgsSent.Add(uint64(len(payloads)))
			batch.reset()
			e.advance(gen, false)
		}
	}
}

// publish sends payloads until the driver accepts them, keeping their
// sequence numbers across retries. It returns false when the engine stops
// first.
func (e *Engine) publish(payloads [][]byte, nkeys int) bool {
	backoff := e.cfg.RetryBackoffMin
	var timer *time.Timer
	for attempt := 1; ; attempt++ {
		err := e.cfg.Driver.Publish(e.pubCtx, payloads)
		if err == nil {
			if attempt > 1 {
				e.log.Info("engine: publish recovered", "attempts", attempt)
			}
			return true
		}
		if e.pubCtx.Err() != nil {
			return false
		}
		e.st.failures.Add(1)
		if attempt == 1 {
			e.log.Warn("engine: publish failed; retrying with backoff", "err", err, "messages", len(payloads), "keys", nkeys)
		} else {
			e.log.Debug("engine: publish retry failed", "err", err, "attempt", attempt)
		}
		// Jitter in [backoff/2, backoff) spreads the retries of many nodes.
		d := backoff/2 + rand.N(backoff/2+1)
		if timer == nil {
			timer = time.NewTimer(d)
			defer timer.Stop()
		} else {
			timer.Reset(d)
		}
		select {
		case <-timer.C:
		case <-e.pubCtx.Done():
			return false
		}
		e.st.retries.Add(1)
		backoff = min(2*backoff, e.cfg.RetryBackoffMax)
	}
}

// Close flushes queued broadcasts for at most FlushTimeout, stops the
// publisher and the liveness timer, closes the subscription (not the
// driver) and waits for its goroutines. Broadcasts still unsent are counted
// in Stats.BroadcastsDropped, logged at error level and reported as an error
// wrapping ErrUnsent. Close is idempotent; later calls return nil.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		<-e.closeDone
		return nil
	}
	e.closed = true
	e.mu.Unlock()
	defer close(e.closeDone)

	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.FlushTimeout)
	flushErr := e.Flush(ctx)
	cancel()
	e.pubCancel()
	<-e.loopDone

	e.mu.Lock()
	e.pending.coalesce()
	dropped := e.pending.len() + e.inflight
	if e.pendingClear {
		dropped++
	}
	e.mu.Unlock()

	e.liveMu.Lock()
	e.liveStopped = true
	if e.timer != nil {
		e.timer.Stop()
	}
	e.liveMu.Unlock()
	var subErr error
	if e.sub != nil { // nil for a publisher
		subErr = e.sub.Close()
	}

	var err error
	if dropped > 0 {
		e.st.dropped.Add(uint64(dropped))
		e.log.Error("engine: closed with unpublished invalidations; peers may keep stale entries", "keys", dropped, "err", flushErr)
		err = fmt.Errorf("%w: %d keys (%v)", ErrUnsent, dropped, flushErr)
	}
	if subErr != nil {
		err = errors.Join(err, fmt.Errorf("engine: close subscription: %w", subErr))
	}
	return err
}

// Stats returns a snapshot of the counters.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	e.pending.coalesce() // so that duplicates count once
	depth := e.pending.len() + e.inflight
	if e.pendingClear {
		depth++
	}
	queued := e.queued
	e.mu.Unlock()
	s := Stats{
		BroadcastsQueued:  queued,
		KeysSent:          e.st.keysSent.Load(),
		ClearsSent:        e.st.clearsSent.Load(),
		MessagesSent:      e.st.msgsSent.Load(),
		PublishRetries:    e.st.retries.Load(),
		PublishFailures:   e.st.failures.Load(),
		BroadcastsDropped: e.st.dropped.Load(),
		OutboxOverflows:   e.st.overflows.Load(),
		MessagesReceived:  e.st.received.Load(),
		MessagesApplied:   e.st.applied.Load(),
		IgnoredOwn:        e.st.ignoredOwn.Load(),
		RawKeys:           e.st.raw.Load(),
		Malformed:         e.st.malformed.Load(),
		Gaps:              e.st.gaps.Load(),
		ClearsOnGap:       e.st.clearsOnGap.Load(),
		CatchUps:          e.st.catchUps.Load(),
		KeysReplayed:      e.st.keysReplayed.Load(),
		ClearsCollapsed:   e.st.clearsCollapsed.Load(),
		OutageReads:       e.st.outageReads.Load(),
		OutboxDepth:       depth,
		LinkUp:            e.linkUpNow.Load(),
		Outage:            e.outageNow.Load(),
		Serving:           e.Serving(),
	}
	s.PublishLatencyCount, s.PublishLatencySum, s.PublishLatencyBuckets = e.st.pubLatency.snapshot()
	for i := range e.st.clears {
		if n := e.st.clears[i].Load(); n > 0 {
			if s.ClearsByReason == nil {
				s.ClearsByReason = make(map[string]uint64, len(clearReasons))
			}
			s.ClearsByReason[clearReasons[i]] = n
		}
	}
	if at := e.lastAlive.Load(); at != 0 {
		// Measured on the monotonic clock; LastAlive is only its wall
		// clock rendering.
		wall, now := e.clock.Read()
		s.SinceAlive = time.Duration(now - at)
		s.LastAlive = wall.Add(-s.SinceAlive)
	}
	return s
}
