package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/halilbulentorhon/invacache-go/internal/monotime"
	"github.com/halilbulentorhon/invacache-go/invalidation"
)

// ErrLinkDead is passed to HandleLinkDown when no PONG came back through the
// subscription connection within the dead-link timeout (a half-open or
// blackholed link, a stuck server, or a subscriber Redis dropped while its
// backlog was still being read). The driver then closes that connection and
// subscribes again on a new one.
var ErrLinkDead = errors.New("redis: subscription link dead: no PONG within the dead-link timeout")

// DefaultPingInterval is the liveness PING period when SubscribeOptions
// leaves it zero.
const DefaultPingInterval = time.Second

// Backoff between failed attempts to (re)establish the subscription.
const (
	reconnectBackoffMin = 20 * time.Millisecond
	reconnectBackoffMax = time.Second
)

// deadTimeout is how long a subscription may go without a PONG before the
// driver declares the link dead: three missed pings, at least one second.
func deadTimeout(ping time.Duration) time.Duration {
	return max(3*ping, time.Second)
}

// hubs holds the process-wide shared connections, keyed by connection
// settings (see settingsKey), so that many caches on one Redis hold one
// publish pool and one subscription connection between them.
var hubs struct {
	mu sync.Mutex
	m  map[string]*hub // guarded by mu
}

// hub is one client (publish pool) plus, while anyone is subscribed, one
// subscription session multiplexing every channel its subscribers use.
type hub struct {
	key        string
	pub        goredis.UniversalClient     // publishes
	sub        goredis.UniversalClient     // subscribes (pub too for a caller's client)
	tracker    *connTracker                // pub's connections; nil for a caller's client
	ownsClient bool                        // close the clients with the hub (false for a caller's client)
	sharded    bool                        // SSUBSCRIBE/SPUBLISH instead of SUBSCRIBE/PUBLISH
	logger     atomic.Pointer[slog.Logger] // the first enabled logger of the drivers sharing the hub
	refs       int                         // guarded by hubs.mu

	mu   sync.Mutex
	sess *session // guarded by mu; nil while nobody is subscribed

	// clock is the time base of the liveness PINGs and the dead-link check:
	// its monotonic reading only, so a wall clock step changes nothing. The
	// zero value reads the system clocks; tests set it before the first
	// Subscribe.
	clock monotime.Clock
}

// session is one subscription connection (recreated after a dead link) and
// the two goroutines that serve it: the reader, which receives and calls the
// handlers, and the controller, which sends SUBSCRIBE/UNSUBSCRIBE and PING.
type session struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{} // cap 1: the subscriber set changed

	subs       map[*subscription]struct{} // guarded by hub.mu
	ps         *goredis.PubSub            // guarded by hub.mu; current connection, nil when declared dead
	psChannels []string                   // guarded by hub.mu; channels subscribed when ps was created

	snap      atomic.Pointer[subsSnap] // rebuilt under hub.mu on every change
	lastAlive atomic.Int64             // hub.clock.Mono() of the last PONG/confirmation or of the connection's start
}

// subsSnap is an immutable view of a session's subscribers for the loops.
type subsSnap struct {
	byChannel map[string][]*subscription
	channels  []string // sorted
	ping      time.Duration
}

// subscription is one attached Handler.
type subscription struct {
	hub     *hub
	driver  *Driver
	channel string
	h       invalidation.Handler
	ping    time.Duration

	// callMu serializes handler calls with Close, so that no handler method
	// runs after Close returns. Handlers run while it is held: that lock is
	// the guarantee, and it is private to this subscription.
	callMu sync.Mutex
	closed bool // guarded by callMu

	state linkState // owned by the session's reader goroutine
}

type linkState uint8

const (
	stateNew linkState = iota
	stateUp
	stateDown
)

// acquireHub returns the shared hub for key, building it when none exists.
// The hub logs to logger unless it already has an enabled one.
func acquireHub(key string, logger *slog.Logger, build func() (*hub, error)) (*hub, error) {
	hubs.mu.Lock()
	defer hubs.mu.Unlock()
	if h, ok := hubs.m[key]; ok {
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
	if hubs.m == nil {
		hubs.m = map[string]*hub{}
	}
	hubs.m[key] = h
	return h, nil
}

func (h *hub) log() *slog.Logger { return h.logger.Load() }

func enabled(l *slog.Logger) bool {
	return l != nil && l.Enabled(context.Background(), slog.LevelError)
}

// release drops one reference; the last closes the client it owns.
func (h *hub) release() error {
	hubs.mu.Lock()
	h.refs--
	last := h.refs == 0
	if last {
		delete(hubs.m, h.key)
	}
	hubs.mu.Unlock()
	if !last {
		return nil
	}
	h.mu.Lock()
	s := h.sess
	h.sess = nil
	h.mu.Unlock()
	if s != nil { // drivers close their subscriptions first; this is a safety net
		h.stopSession(s)
	}
	if h.ownsClient {
		err := errors.Join(h.pub.Close(), h.sub.Close())
		if err != nil {
			return fmt.Errorf("redis: close client: %w", err)
		}
	}
	return nil
}

// attach adds sub, starting the session if it is the first subscriber.
func (h *hub) attach(sub *subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.sess
	if s == nil {
		s = &session{kick: make(chan struct{}, 1), subs: map[*subscription]struct{}{}}
		s.ctx, s.cancel = context.WithCancel(context.Background())
		s.lastAlive.Store(h.clock.Mono())
		h.sess = s
		s.subs[sub] = struct{}{}
		s.rebuild()
		s.wg.Add(2)
		go h.readLoop(s)
		go h.controlLoop(s)
		return
	}
	s.subs[sub] = struct{}{}
	s.rebuild()
	s.poke()
}

// detach removes sub; the last subscriber stops the session and waits for
// its goroutines.
func (h *hub) detach(sub *subscription) {
	h.mu.Lock()
	s := h.sess
	if s == nil {
		h.mu.Unlock()
		return
	}
	if _, ok := s.subs[sub]; !ok {
		h.mu.Unlock()
		return
	}
	delete(s.subs, sub)
	s.rebuild()
	if len(s.subs) > 0 {
		s.poke()
		h.mu.Unlock()
		return
	}
	h.sess = nil
	h.mu.Unlock()
	h.stopSession(s)
}

func (h *hub) stopSession(s *session) {
	s.cancel()
	h.mu.Lock()
	ps := s.ps
	s.ps = nil
	h.mu.Unlock()
	if ps != nil {
		_ = ps.Close() // unblocks the reader's Receive
	}
	s.wg.Wait()
}

func (s *session) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// rebuild publishes a new snapshot of s.subs; the caller holds hub.mu.
func (s *session) rebuild() {
	n := &subsSnap{byChannel: map[string][]*subscription{}, ping: 0}
	for sub := range s.subs {
		if _, ok := n.byChannel[sub.channel]; !ok {
			n.channels = append(n.channels, sub.channel)
		}
		n.byChannel[sub.channel] = append(n.byChannel[sub.channel], sub)
		if n.ping == 0 || sub.ping < n.ping {
			n.ping = sub.ping
		}
	}
	sort.Strings(n.channels)
	if n.ping == 0 {
		n.ping = DefaultPingInterval
	}
	s.snap.Store(n)
}

func (h *hub) subscribeCmd(ctx context.Context, ps *goredis.PubSub, channels ...string) error {
	if len(channels) == 0 {
		return nil
	}
	if h.sharded {
		return ps.SSubscribe(ctx, channels...)
	}
	return ps.Subscribe(ctx, channels...)
}

func (h *hub) unsubscribeCmd(ctx context.Context, ps *goredis.PubSub, channels ...string) error {
	if h.sharded {
		return ps.SUnsubscribe(ctx, channels...)
	}
	return ps.Unsubscribe(ctx, channels...)
}

// newPubSub creates the session's next subscription connection and
// subscribes the current channels on it. It returns nil when the session is
// stopping.
func (h *hub) newPubSub(s *session) *goredis.PubSub {
	var ps *goredis.PubSub
	if h.sharded {
		ps = h.sub.SSubscribe(s.ctx) // no channels: no I/O yet
	} else {
		ps = h.sub.Subscribe(s.ctx)
	}
	channels := s.snap.Load().channels
	h.mu.Lock()
	if s.ctx.Err() != nil {
		h.mu.Unlock()
		_ = ps.Close()
		return nil
	}
	s.ps, s.psChannels = ps, channels
	h.mu.Unlock()
	s.lastAlive.Store(h.clock.Mono())
	s.poke() // the controller learns of the new connection
	// Dials and sends SUBSCRIBE; a failure surfaces again from Receive,
	// which redials (go-redis remembers the channels).
	_ = h.subscribeCmd(s.ctx, ps, channels...)
	return ps
}

// readLoop receives from the session's connection until the session stops.
func (h *hub) readLoop(s *session) {
	defer s.wg.Done()
	r := reader{h: h, s: s, confirmed: map[string]bool{}, backoff: reconnectBackoffMin}
	for {
		ps := h.newPubSub(s)
		if ps == nil {
			return
		}
		if !r.run(ps) {
			return
		}
	}
}

// reader is the state of a session's reader goroutine.
type reader struct {
	h         *hub
	s         *session
	confirmed map[string]bool // channels confirmed on the current connection
	buf       []byte          // payload copy handed to handlers
	backoff   time.Duration
}

// run serves one PubSub. It returns true when the connection was declared
// dead and a new one should be made, false when the session stops.
func (r *reader) run(ps *goredis.PubSub) bool {
	s := r.s
	for {
		msg, err := ps.Receive(s.ctx)
		if err != nil {
			if s.ctx.Err() != nil {
				return false
			}
			r.h.mu.Lock()
			replaced := s.ps != ps
			r.h.mu.Unlock()
			if replaced {
				_ = ps.Close()
				r.linkDown(ErrLinkDead)
				r.h.refreshTopology()
				return r.sleep()
			}
			r.linkDown(err)
			r.h.refreshTopology()
			if isReplyError(err) {
				// Redis refused a command (MOVED after a failover, NOPERM,
				// ...): the connection is fine, so go-redis keeps it, but
				// the channel is not subscribed. Start over on a new one.
				_ = ps.Close()
				return r.sleep()
			}
			if !r.sleep() {
				return false
			}
			continue
		}
		switch m := msg.(type) {
		case *goredis.Message:
			r.deliver(m)
		case *goredis.Pong:
			// The PONG proves the link delivered what was published
			// before its PING was sent, not before now (a lagging link
			// delivers it late): it counts from the PING's send time.
			sent := pingSent(m.Payload, r.h.clock.Mono())
			if len(r.confirmed) > 0 {
				// Only a connection holding a subscription is alive for
				// us: one whose SUBSCRIBE never took is dead too.
				storeMax(&s.lastAlive, sent)
			}
			r.pong(sent)
		case *goredis.Subscription:
			switch m.Kind {
			case "subscribe", "ssubscribe":
				s.lastAlive.Store(r.h.clock.Mono())
				r.backoff = reconnectBackoffMin
				r.confirmed[m.Channel] = true
				r.linkUp(m.Channel)
			case "unsubscribe", "sunsubscribe":
				delete(r.confirmed, m.Channel)
			}
		}
	}
}

// isReplyError reports an error reply from Redis, as opposed to a network
// or client error.
func isReplyError(err error) bool {
	var re goredis.Error
	return errors.As(err, &re) && !errors.Is(err, goredis.ErrClosed)
}

// refreshTopology asks a cluster client to reload the slot map (in the
// background): a subscription reconnects to the node its cached map names,
// which after a failover is the dead master until the map is reloaded.
func (h *hub) refreshTopology() {
	if cc, ok := h.sub.(*goredis.ClusterClient); ok {
		cc.ReloadState(context.Background())
	}
}

// sleep waits the reconnect backoff (doubling, jittered); false when the
// session stops meanwhile.
func (r *reader) sleep() bool {
	d := r.backoff/2 + rand.N(r.backoff/2+1)
	r.backoff = min(2*r.backoff, reconnectBackoffMax)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.s.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (r *reader) deliver(m *goredis.Message) {
	subs := r.s.snap.Load().byChannel[m.Channel]
	if len(subs) == 0 {
		return
	}
	r.buf = append(r.buf[:0], m.Payload...)
	for _, sub := range subs {
		sub.call(evMessage, r.buf, nil)
	}
	if cap(r.buf) > 256<<10 { // do not pin a huge buffer after a big message
		r.buf = nil
	}
}

func (r *reader) linkUp(channel string) {
	ups := 0
	for _, sub := range r.s.snap.Load().byChannel[channel] {
		if sub.setState(stateUp, nil) {
			ups++
		}
	}
	if ups > 0 {
		r.h.log().Info("redis: subscription link up", "channel", channel, "handlers", ups)
	}
}

// pingSent decodes the send time a PING carried as its payload (a
// hub.clock.Mono() reading, never the wall clock: a wall clock step between
// PING and PONG would age or rejuvenate the proof by the step); a reply
// without one counts as sent now, and none counts later than now.
func pingSent(payload string, now int64) int64 {
	ns, err := strconv.ParseInt(payload, 10, 64)
	if err != nil || ns <= 0 {
		return now
	}
	return min(ns, now)
}

// storeMax stores v in a unless a holds a larger value.
func storeMax(a *atomic.Int64, v int64) {
	for cur := a.Load(); v > cur && !a.CompareAndSwap(cur, v); cur = a.Load() {
	}
}

// pong proves the link alive as of sent (the PING's send time on
// hub.clock): subscribers that joined an already confirmed channel get
// their HandleLinkUp now, the others HandleAliveAt(sent).
func (r *reader) pong(sent int64) {
	snap := r.s.snap.Load()
	for _, ch := range snap.channels {
		if !r.confirmed[ch] {
			continue
		}
		for _, sub := range snap.byChannel[ch] {
			if !sub.setState(stateUp, nil) {
				sub.alive(sent)
			}
		}
	}
}

// linkDown tells every subscriber that is not already down.
func (r *reader) linkDown(err error) {
	clear(r.confirmed)
	downs := 0
	for _, sub := range r.s.snap.Load().byChannel {
		for _, sub := range sub {
			if sub.setState(stateDown, err) {
				downs++
			}
		}
	}
	if downs > 0 {
		r.h.log().Warn("redis: subscription link down", "err", err, "handlers", downs)
	}
}

// setState moves sub to st (up or down) and tells its handler; false when
// it was there already. Called by the reader only.
func (sub *subscription) setState(st linkState, err error) bool {
	if sub.state == st {
		return false
	}
	sub.state = st
	if st == stateUp {
		sub.call(evUp, nil, nil)
	} else {
		sub.call(evDown, nil, err)
	}
	return true
}

// Handler events passed to subscription.call.
const (
	evMessage = iota
	evUp
	evDown
)

// call runs one handler method unless the subscription is closed.
func (sub *subscription) call(ev int, payload []byte, err error) {
	sub.callMu.Lock()
	defer sub.callMu.Unlock()
	if sub.closed {
		return
	}
	switch ev {
	case evMessage:
		dispatch(sub.h, payload)
	case evUp:
		sub.h.HandleLinkUp()
	case evDown:
		sub.h.HandleLinkDown(err)
	}
}

// alive reports a proof of life as of sent (a monotonic reading) unless the
// subscription is closed. The handler gets it as a time.Time that carries
// the monotonic reading, which is all it may compare.
func (sub *subscription) alive(sent int64) {
	sub.callMu.Lock()
	defer sub.callMu.Unlock()
	if sub.closed {
		return
	}
	sub.h.HandleAliveAt(monotime.Time(sent))
}

// controlLoop keeps the connection's channel set in line with the
// subscribers, sends the liveness PINGs and declares the link dead when no
// PONG comes back in time.
func (h *hub) controlLoop(s *session) {
	defer s.wg.Done()
	var (
		cur       *goredis.PubSub
		requested map[string]bool // channels sent to cur
		nextPing  int64           // on h.clock.Mono()
		kicked    bool
	)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		snap := s.snap.Load()
		h.mu.Lock()
		ps := s.ps
		if ps != cur {
			cur = ps
			requested = map[string]bool{}
			for _, ch := range s.psChannels {
				requested[ch] = true
			}
		}
		h.mu.Unlock()

		now := h.clock.Mono()
		if ps != nil {
			for _, ch := range snap.channels {
				if !requested[ch] {
					requested[ch] = true
					_ = h.subscribeCmd(s.ctx, ps, ch)
				}
			}
			for ch := range requested {
				if _, ok := snap.byChannel[ch]; !ok {
					delete(requested, ch)
					_ = h.unsubscribeCmd(s.ctx, ps, ch)
				}
			}
			// Besides the periodic proof, a PING after every change lets
			// subscribers that joined an already confirmed channel learn
			// (in order, from the reader) that the link is up.
			due := now >= nextPing
			if due || kicked {
				// The payload is the send time: the PONG echoes it, so
				// the proof counts from here (see pingSent).
				_ = ps.Ping(s.ctx, strconv.FormatInt(h.clock.Mono(), 10))
			}
			if due {
				nextPing = now + int64(snap.ping)
			}
			if time.Duration(now-s.lastAlive.Load()) > deadTimeout(snap.ping) {
				h.declareDead(s, ps)
			}
		} else {
			nextPing = now + int64(snap.ping)
		}

		timer.Reset(max(time.Duration(nextPing-h.clock.Mono()), time.Millisecond))
		select {
		case <-s.ctx.Done():
			return
		case <-s.kick:
			kicked = true
		case <-timer.C:
			kicked = false
		}
	}
}

// declareDead closes ps; the reader then reports ErrLinkDead and subscribes
// on a new connection.
func (h *hub) declareDead(s *session, ps *goredis.PubSub) {
	h.mu.Lock()
	if s.ps != ps {
		h.mu.Unlock()
		return
	}
	s.ps = nil
	h.mu.Unlock()
	h.log().Warn("redis: no PONG within the dead-link timeout; reconnecting the subscription")
	_ = ps.Close()
}
