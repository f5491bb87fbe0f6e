package memory

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/invalidation"
)

// Errors returned by Publish and Subscribe.
var (
	ErrClosed       = errors.New("memory: closed")
	ErrDisconnected = errors.New("memory: disconnected")
	ErrInjected     = errors.New("memory: injected publish failure")
)

// DefaultPingInterval is used when SubscribeOptions.PingInterval is zero.
const DefaultPingInterval = 100 * time.Millisecond

// DefaultBusName is the bus the "memory" driver type uses without a "Bus"
// setting.
const DefaultBusName = "default"

func init() {
	invalidation.MustRegister("memory", open)
}

// Config is the typed configuration of the "memory" driver type (also
// accepted as a pointer in invalidation.Spec.Typed).
type Config struct {
	// Bus names the process-wide bus (Named); empty means DefaultBusName.
	Bus string
}

func open(spec invalidation.Spec) (invalidation.Driver, error) {
	var cfg Config
	switch t := spec.Typed.(type) {
	case nil:
		for k, v := range spec.Options {
			if !strings.EqualFold(k, "Bus") {
				return nil, fmt.Errorf("memory: unknown DriverConfig key %q (known: Bus): %w", k, config.ErrInvalidConfig)
			}
			s, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("memory: DriverConfig key %q: want a string, got %T: %w", k, v, config.ErrInvalidConfig)
			}
			cfg.Bus = s
		}
	case Config:
		cfg = t
	case *Config:
		if t != nil {
			cfg = *t
		}
	default:
		return nil, fmt.Errorf("memory: typed settings of type %T, want memory.Config: %w", spec.Typed, config.ErrInvalidConfig)
	}
	if cfg.Bus == "" {
		cfg.Bus = DefaultBusName
	}
	return Named(cfg.Bus).Connect(), nil
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

// Bus is one in-process broadcast channel. It has no goroutines of its own.
type Bus struct {
	// mu guards conns and closed, and serializes fan-out so every subscriber
	// sees payloads in the same order.
	mu     sync.Mutex
	conns  map[*Conn]struct{}
	closed bool
}

// NewBus returns an empty bus.
func NewBus() *Bus { return &Bus{conns: map[*Conn]struct{}{}} }

func (b *Bus) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// Connect returns a new link to the bus. On a closed bus the Conn is
// closed: Publish and Subscribe fail with ErrClosed.
func (b *Bus) Connect() *Conn {
	c := &Conn{bus: b, subs: map[*subscription]struct{}{}}
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
	dropNext    int // incoming payloads still to lose
	failPublish int // Publish calls still to fail
}

var _ invalidation.Driver = (*Conn)(nil)

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
	for peer := range b.conns {
		peer.receive(copies)
	}
	return nil
}

// receive queues payloads for c's subscriptions, applying faults. Called
// with the bus locked.
func (c *Conn) receive(payloads [][]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down || c.closed {
		return
	}
	for _, p := range payloads {
		if c.dropNext > 0 {
			c.dropNext--
			continue
		}
		for s := range c.subs {
			s.push(event{kind: evMessage, payload: p})
		}
	}
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
	evLinkUp
	evLinkDown
	evAlive
)

type event struct {
	kind    int
	payload []byte
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
