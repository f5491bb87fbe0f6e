package memory

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/invalidation"
)

// Errors returned by Publish, Subscribe, LogHead and Replay.
var (
	// ErrClosed: the Conn or its Bus is closed.
	ErrClosed = errors.New("memory: closed")
	// ErrDisconnected: the Conn is down (Disconnect).
	ErrDisconnected = errors.New("memory: disconnected")
	// ErrInjected: a failure asked for with FailPublish or FailReplay.
	ErrInjected = errors.New("memory: injected failure")
)

// DefaultPingInterval is used when SubscribeOptions.PingInterval is zero.
const DefaultPingInterval = 100 * time.Millisecond

// Defaults of BusConfig.
const (
	DefaultReplayWindow  = time.Minute
	DefaultMaxLogEntries = 100_000
)

// replayChunk is how many log entries Replay copies per hold of the bus
// lock: a long replay never holds the lock, nor a copy of the log.
const replayChunk = 1024

// DefaultBusName is the bus the "memory" driver type uses without a "Bus"
// setting.
const DefaultBusName = "default"

func init() {
	invalidation.MustRegister("memory", open)
}

// settings are the "memory" driver type's DriverConfig keys.
type settings struct {
	// Bus names the process-wide bus (Named); empty means DefaultBusName.
	Bus string
	// DisableReplay turns the replay log off for this link (Conn.DisableReplay).
	DisableReplay bool
}

func open(spec invalidation.Spec) (invalidation.Driver, error) {
	var cfg settings
	for k, v := range spec.Options {
		switch {
		case strings.EqualFold(k, "Bus"):
			s, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("memory: DriverConfig key %q: want a string, got %T: %w", k, v, config.ErrInvalidConfig)
			}
			cfg.Bus = s
		case strings.EqualFold(k, "DisableReplay"):
			b, ok := v.(bool)
			if !ok {
				return nil, fmt.Errorf("memory: DriverConfig key %q: want a bool, got %T: %w", k, v, config.ErrInvalidConfig)
			}
			cfg.DisableReplay = b
		default:
			return nil, fmt.Errorf("memory: unknown DriverConfig key %q (known: Bus, DisableReplay): %w", k, config.ErrInvalidConfig)
		}
	}
	if cfg.Bus == "" {
		cfg.Bus = DefaultBusName
	}
	c := Named(cfg.Bus).Connect()
	if cfg.DisableReplay {
		c.DisableReplay()
	}
	return c, nil
}

var (
	namedMu sync.Mutex
	named   = map[string]*Bus{} // guarded by namedMu
)

// Named returns the process-wide bus called name, creating it on first use.
// Closing a named bus closes it for everyone; a later Named call creates a
// fresh one.
func Named(name string) *Bus {
	namedMu.Lock()
	defer namedMu.Unlock()
	b := named[name]
	if b == nil || b.isClosed() {
		b = NewBus()
		named[name] = b
	}
	return b
}

// BusConfig configures a Bus's replay log. Zero fields take the defaults;
// negative values are errors.
type BusConfig struct {
	// ReplayWindow is how long the log keeps an entry: older entries are
	// trimmed when the next one is appended. Default DefaultReplayWindow.
	ReplayWindow time.Duration
	// MaxLogEntries caps the log: past it the oldest entries are trimmed.
	// Default DefaultMaxLogEntries.
	MaxLogEntries int
	// DisableReplay turns the log off for every Conn of the bus (as
	// Conn.DisableReplay on each).
	DisableReplay bool
}

// Bus is one in-process broadcast channel with a replay log. It has no
// goroutines of its own.
type Bus struct {
	cfg BusConfig

	// mu guards the fields below, and serializes fan-out so every
	// subscriber sees payloads in the same order, which is log order.
	mu     sync.Mutex
	conns  map[*Conn]struct{}
	closed bool
	log    replayLog
}

// replayLog is the bus's log: entries in id order, trimmed from the front.
type replayLog struct {
	epoch      string
	entries    []logEntry // entries[head:] are live
	head       int
	last       invalidation.LogID // id of the last entry appended in this epoch (zero: none)
	maxDeleted invalidation.LogID // greatest id trimmed in this epoch (zero: none)
	// The unlogged mark: a publish outside the log (a Conn with
	// DisableReplay) came after the entry unloggedAfter (the log's last id
	// then), so a catch-up from a cursor up to it cannot prove it holds
	// every message the node missed.
	unlogged      bool
	unloggedAfter invalidation.LogID
}

type logEntry struct {
	id      invalidation.LogID
	at      time.Time // when appended, for the window (monotonic reading)
	payload []byte    // shared read-only with the deliveries
}

// NewBus returns an empty bus whose log keeps the defaults of BusConfig.
func NewBus() *Bus {
	b, _ := NewBusWith(BusConfig{}) // the zero config is valid
	return b
}

// NewBusWith returns an empty bus configured by cfg; it fails only on
// negative settings.
func NewBusWith(cfg BusConfig) (*Bus, error) {
	switch {
	case cfg.ReplayWindow < 0:
		return nil, fmt.Errorf("memory: ReplayWindow is negative (%v): %w", cfg.ReplayWindow, config.ErrInvalidConfig)
	case cfg.MaxLogEntries < 0:
		return nil, fmt.Errorf("memory: MaxLogEntries is negative (%d): %w", cfg.MaxLogEntries, config.ErrInvalidConfig)
	}
	if cfg.ReplayWindow == 0 {
		cfg.ReplayWindow = DefaultReplayWindow
	}
	if cfg.MaxLogEntries == 0 {
		cfg.MaxLogEntries = DefaultMaxLogEntries
	}
	return &Bus{cfg: cfg, conns: map[*Conn]struct{}{}, log: replayLog{epoch: newEpoch()}}, nil
}

func newEpoch() string { return fmt.Sprintf("%016x", rand.Uint64()) }

// Restart simulates a restart of the bus's server without persistence: the
// log is lost and a new one starts, with a new epoch. Links stay up
// (Disconnect and Reconnect the Conns to drop them as well); a node whose
// cursor is in the old epoch cannot catch up and clears.
func (b *Bus) Restart() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.log = replayLog{epoch: newEpoch()}
}

// TrimLog drops every entry of the log now, as retention does after the
// replay window: a node whose cursor is before the last entry cannot catch
// up and clears.
func (b *Bus) TrimLog() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.log.trimTo(len(b.log.entries))
}

// LogLen returns the number of entries the log holds.
func (b *Bus) LogLen() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.log.entries) - b.log.head
}

// append logs payloads at now and returns their positions. Called with the
// bus locked.
func (l *replayLog) append(cfg BusConfig, payloads [][]byte, now time.Time) []invalidation.LogPos {
	pos := make([]invalidation.LogPos, len(payloads))
	ms := uint64(max(now.UnixMilli(), 0))
	for i, p := range payloads {
		// Redis stream ids: milliseconds, then a sequence within one.
		id := invalidation.LogID{Ms: ms}
		if id.Compare(l.last) <= 0 {
			id = invalidation.LogID{Ms: l.last.Ms, Seq: l.last.Seq + 1}
		}
		l.entries = append(l.entries, logEntry{id: id, at: now, payload: p})
		l.last = id
		pos[i] = invalidation.LogPos{Epoch: l.epoch, ID: id}
	}
	// Retention: the window, then the hard cap.
	cut := l.head
	for cut < len(l.entries) && now.Sub(l.entries[cut].at) > cfg.ReplayWindow {
		cut++
	}
	cut = max(cut, len(l.entries)-cfg.MaxLogEntries)
	l.trimTo(cut)
	return pos
}

// trimTo drops the entries before index i, remembering the greatest id
// dropped, and compacts the slice when half of it is dead.
func (l *replayLog) trimTo(i int) {
	if i <= l.head {
		return
	}
	l.maxDeleted = l.entries[i-1].id
	clear(l.entries[l.head:i]) // drop the payloads
	l.head = i
	if l.head == len(l.entries) {
		l.entries, l.head = l.entries[:0], 0
	} else if 2*l.head >= len(l.entries) {
		n := copy(l.entries, l.entries[l.head:])
		clear(l.entries[n:])
		l.entries, l.head = l.entries[:n], 0
	}
}

// continuity returns nil if the log holds every entry after `after`, else
// an error wrapping invalidation.ErrNoContinuity that says why.
func (l *replayLog) continuity(after invalidation.LogPos) error {
	switch {
	case after.Epoch != l.epoch:
		return fmt.Errorf("memory: log epoch is %q, cursor's is %q (the log was recreated): %w", l.epoch, after.Epoch, invalidation.ErrNoContinuity)
	case after.ID.Compare(l.maxDeleted) < 0:
		return fmt.Errorf("memory: log trimmed through %s, past the cursor %s: %w", l.maxDeleted, after.ID, invalidation.ErrNoContinuity)
	case after.ID.Compare(l.last) > 0:
		return fmt.Errorf("memory: log ends at %s, before the cursor %s: %w", l.last, after.ID, invalidation.ErrNoContinuity)
	case l.unlogged && after.ID.Compare(l.unloggedAfter) <= 0:
		return fmt.Errorf("memory: a message was published outside the log after %s, at or after the cursor %s: %w", l.unloggedAfter, after.ID, invalidation.ErrNoContinuity)
	}
	return nil
}

func (b *Bus) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// Connect returns a new link to the bus. On a closed bus the Conn is
// closed: Publish and Subscribe fail with ErrClosed.
func (b *Bus) Connect() *Conn {
	c := &Conn{bus: b, subs: map[*subscription]struct{}{}, noReplay: b.cfg.DisableReplay}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		c.closed = true
		return c
	}
	b.conns[c] = struct{}{}
	return c
}

// Close closes every Conn on the bus and waits for their subscriptions'
// goroutines. Idempotent.
func (b *Bus) Close() error {
	b.mu.Lock()
	b.closed = true
	conns := make([]*Conn, 0, len(b.conns))
	for c := range b.conns {
		conns = append(conns, c)
	}
	b.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
	return nil
}

// Conn is one node's link to a Bus; it implements invalidation.Driver.
type Conn struct {
	bus *Bus

	// mu guards the fields below; lock order is Bus.mu, Conn.mu,
	// subscription.mu.
	mu          sync.Mutex
	subs        map[*subscription]struct{}
	closed      bool
	down        bool // Disconnect was called and not yet Reconnect
	stalled     bool
	dropNext    int  // incoming payloads still to lose
	failPublish int  // Publish calls still to fail
	failReplay  int  // LogHead and Replay calls still to fail
	noReplay    bool // DisableReplay: publishes are not logged, Replay refuses
}

var (
	_ invalidation.Driver   = (*Conn)(nil)
	_ invalidation.Replayer = (*Conn)(nil)
)

// Publish copies payloads and queues them, in order, for every subscription
// on the bus. It never waits for subscribers.
func (c *Conn) Publish(ctx context.Context, payloads [][]byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: publish: %w", err)
	}
	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		return ErrClosed
	case c.down:
		c.mu.Unlock()
		return ErrDisconnected
	case c.failPublish > 0:
		c.failPublish--
		c.mu.Unlock()
		return ErrInjected
	}
	logged := !c.noReplay
	c.mu.Unlock()

	// One copy per publish, shared read-only by all subscribers.
	total := 0
	for _, p := range payloads {
		total += len(p)
	}
	all := make([]byte, 0, total)
	copies := make([][]byte, len(payloads))
	for i, p := range payloads {
		all = append(all, p...)
		copies[i] = all[len(all)-len(p) : len(all) : len(all)]
	}

	b := c.bus
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	var pos []invalidation.LogPos // nil: not logged
	if logged {
		pos = b.log.append(b.cfg, copies, time.Now())
	} else {
		b.log.unlogged, b.log.unloggedAfter = true, b.log.last
	}
	for peer := range b.conns {
		peer.receive(copies, pos)
	}
	return nil
}

// receive queues payloads (logged at pos, unless pos is nil) for c's
// subscriptions, applying faults: what a fault loses here stays in the log.
// Called with the bus locked.
func (c *Conn) receive(payloads [][]byte, pos []invalidation.LogPos) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down || c.closed {
		return
	}
	for i, p := range payloads {
		if c.dropNext > 0 {
			c.dropNext--
			continue
		}
		ev := event{kind: evMessage, payload: p}
		if pos != nil {
			ev.kind, ev.pos = evLogMessage, pos[i]
		}
		for s := range c.subs {
			s.push(ev)
		}
	}
}

// DisableReplay turns the replay log off for this Conn, like the Redis
// driver's DisableReplay: its publishes are not logged (peers receive them
// through HandleMessage) and LogHead and Replay return
// invalidation.ErrReplayDisabled. Call it before the Conn is used.
func (c *Conn) DisableReplay() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.noReplay = true
}

// FailReplay makes the next n LogHead or Replay calls on this Conn fail
// with ErrInjected (a log that cannot be read).
func (c *Conn) FailReplay(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failReplay += n
}

// replayable reports why this Conn cannot read the log now, or nil.
func (c *Conn) replayable() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return ErrClosed
	case c.noReplay:
		return fmt.Errorf("memory: %w", invalidation.ErrReplayDisabled)
	case c.down:
		return ErrDisconnected
	case c.failReplay > 0:
		c.failReplay--
		return ErrInjected
	}
	return nil
}

// LogHead returns the position of the log's last entry (the zero id in an
// empty new log). It fails like Replay when the Conn cannot read the log.
func (c *Conn) LogHead(ctx context.Context) (invalidation.LogPos, error) {
	if err := ctx.Err(); err != nil {
		return invalidation.LogPos{}, fmt.Errorf("memory: log head: %w", err)
	}
	if err := c.replayable(); err != nil {
		return invalidation.LogPos{}, err
	}
	b := c.bus
	b.mu.Lock()
	defer b.mu.Unlock()
	return invalidation.LogPos{Epoch: b.log.epoch, ID: b.log.last}, nil
}

// Replay calls fn for every log entry after `after`, up to the log's last
// entry when Replay starts, copying at most a chunk of entry references per
// hold of the bus lock. It fails with an error wrapping
// invalidation.ErrNoContinuity when the log is of another epoch, was
// trimmed past `after` (before or during the replay: each chunk checks
// again), ends before it, or a publish outside the log (a Conn with
// DisableReplay) came after it (the unlogged mark);
// with invalidation.ErrReplayDisabled after DisableReplay; with
// ErrDisconnected while the Conn is down; with ErrInjected after FailReplay.
func (c *Conn) Replay(ctx context.Context, after invalidation.LogPos, fn func(invalidation.LogPos, []byte) error) (invalidation.LogPos, error) {
	if err := c.replayable(); err != nil {
		return after, err
	}
	b := c.bus
	b.mu.Lock()
	if err := b.log.continuity(after); err != nil {
		b.mu.Unlock()
		return after, err
	}
	end := b.log.last
	b.mu.Unlock()

	chunk := make([]logEntry, 0, replayChunk)
	cur := after
	for cur.ID.Compare(end) < 0 {
		if err := ctx.Err(); err != nil {
			return cur, fmt.Errorf("memory: replay: %w", err)
		}
		b.mu.Lock()
		// The log may have moved on since the last chunk: it must still
		// hold everything after cur.
		if err := b.log.continuity(cur); err != nil {
			b.mu.Unlock()
			return cur, err
		}
		epoch, live := b.log.epoch, b.log.entries[b.log.head:]
		i := sort.Search(len(live), func(i int) bool { return live[i].id.Compare(cur.ID) > 0 })
		for ; i < len(live) && len(chunk) < replayChunk && live[i].id.Compare(end) <= 0; i++ {
			chunk = append(chunk, live[i])
		}
		b.mu.Unlock()
		if len(chunk) == 0 { // cannot happen while continuity holds; never spin
			return cur, fmt.Errorf("memory: log has no entry after %s before %s: %w", cur.ID, end, invalidation.ErrNoContinuity)
		}
		for j, en := range chunk {
			p := invalidation.LogPos{Epoch: epoch, ID: en.id}
			if err := fn(p, en.payload); err != nil {
				clear(chunk)
				return cur, fmt.Errorf("memory: replay stopped at %s: %w", p, err)
			}
			cur = p
			chunk[j] = logEntry{}
		}
		chunk = chunk[:0]
	}
	return cur, nil
}

// Subscribe attaches h; HandleLinkUp follows asynchronously unless the Conn
// is disconnected.
func (c *Conn) Subscribe(h invalidation.Handler, opts invalidation.SubscribeOptions) (invalidation.Subscription, error) {
	if h == nil {
		return nil, errors.New("memory: Subscribe: nil handler")
	}
	if opts.PingInterval < 0 {
		return nil, fmt.Errorf("memory: Subscribe: negative PingInterval %v", opts.PingInterval)
	}
	interval := opts.PingInterval
	if interval == 0 {
		interval = DefaultPingInterval
	}
	s := &subscription{
		conn:     c,
		h:        h,
		interval: interval,
		notify:   make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	s.down, s.stalled = c.down, c.stalled
	if !c.down {
		s.push(event{kind: evLinkUp})
	}
	c.subs[s] = struct{}{}
	go s.run()
	return s, nil
}

// Close closes the Conn's subscriptions and detaches it from the bus.
// Idempotent.
func (c *Conn) Close() error {
	c.mu.Lock()
	c.closed = true
	subs := make([]*subscription, 0, len(c.subs))
	for s := range c.subs {
		subs = append(subs, s)
	}
	c.mu.Unlock()
	for _, s := range subs {
		_ = s.Close()
	}
	c.bus.mu.Lock()
	delete(c.bus.conns, c)
	c.bus.mu.Unlock()
	return nil
}

// Disconnect takes the link down: subscriptions get HandleLinkDown (after
// what was already queued), Publish fails and payloads published meanwhile
// are lost to this Conn. It also ends a stall. No-op when already down.
func (c *Conn) Disconnect() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down || c.closed {
		return
	}
	c.down, c.stalled = true, false
	for s := range c.subs {
		s.setState(true, false, &event{kind: evLinkDown, err: ErrDisconnected})
	}
}

// Reconnect brings the link back: subscriptions get HandleLinkUp. No-op
// when not down.
func (c *Conn) Reconnect() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.down || c.closed {
		return
	}
	c.down = false
	for s := range c.subs {
		s.setState(false, c.stalled, &event{kind: evLinkUp})
	}
}

// DropNext silently loses the next n payloads arriving at this Conn.
func (c *Conn) DropNext(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropNext += n
}

// FailPublish makes the next n Publish calls on this Conn fail with
// ErrInjected.
func (c *Conn) FailPublish(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failPublish += n
}

// Stall holds incoming payloads and leaves pings unanswered until Unstall.
func (c *Conn) Stall() { c.setStalled(true) }

// Unstall ends a stall: held payloads are delivered in order, pings resume.
func (c *Conn) Unstall() { c.setStalled(false) }

func (c *Conn) setStalled(v bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stalled = v
	for s := range c.subs {
		s.setState(c.down, v, nil)
	}
}

func (c *Conn) forget(s *subscription) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.subs, s)
}

const (
	evMessage = iota
	evLogMessage
	evLinkUp
	evLinkDown
	evAlive
)

type event struct {
	kind    int
	payload []byte
	pos     invalidation.LogPos // evLogMessage
	err     error
}

// subscription delivers events to one Handler from one goroutine.
type subscription struct {
	conn     *Conn
	h        invalidation.Handler
	interval time.Duration

	// mu guards the fields below.
	mu      sync.Mutex
	queue   []event // events queue[head:] wait for delivery
	head    int
	down    bool // mirrors Conn.down: no pings answered
	stalled bool // mirrors Conn.stalled: nothing delivered

	notify    chan struct{} // capacity 1: the queue or the stall changed
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// push appends ev and wakes the goroutine. Called with s.mu not held.
func (s *subscription) push(ev event) {
	s.mu.Lock()
	s.queue = append(s.queue, ev)
	s.mu.Unlock()
	s.kick()
}

func (s *subscription) setState(down, stalled bool, ev *event) {
	s.mu.Lock()
	s.down, s.stalled = down, stalled
	if ev != nil {
		s.queue = append(s.queue, *ev)
	}
	s.mu.Unlock()
	s.kick()
}

func (s *subscription) kick() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

func (s *subscription) run() {
	defer close(s.done)
	ping := time.NewTicker(s.interval)
	defer ping.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-ping.C:
			s.mu.Lock()
			if !s.down && !s.stalled {
				s.queue = append(s.queue, event{kind: evAlive})
			}
			s.mu.Unlock()
		case <-s.notify:
		}
		for s.deliverOne() {
		}
	}
}

// deliverOne hands the next event to the handler; false when there is none
// to deliver (empty, stalled or closing).
func (s *subscription) deliverOne() bool {
	select {
	case <-s.stop:
		return false
	default:
	}
	s.mu.Lock()
	if s.stalled || s.head == len(s.queue) {
		s.mu.Unlock()
		return false
	}
	ev := s.queue[s.head]
	s.queue[s.head] = event{}
	s.head++
	switch {
	case s.head == len(s.queue):
		s.queue, s.head = s.queue[:0], 0
	case s.head >= 1024 && 2*s.head >= len(s.queue):
		n := copy(s.queue, s.queue[s.head:])
		clear(s.queue[n:]) // drop references to delivered payloads
		s.queue, s.head = s.queue[:n], 0
	}
	s.mu.Unlock()
	switch ev.kind {
	case evMessage:
		s.h.HandleMessage(ev.payload)
	case evLogMessage:
		s.h.HandleLogMessage(ev.pos, ev.payload)
	case evLinkUp:
		s.h.HandleLinkUp()
	case evLinkDown:
		s.h.HandleLinkDown(ev.err)
	case evAlive:
		s.h.HandleAlive()
	}
	return true
}

// Close stops delivery and waits for the goroutine; no Handler method runs
// after it returns. Idempotent.
func (s *subscription) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		s.conn.forget(s)
	})
	<-s.done
	return nil
}
