package redis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/monotime"
	"github.com/halilbulentorhon/invacache-go/invalidation"
)

// ErrLinkDead is passed to HandleLinkDown when no PONG came back through the
// subscription connection within the dead-link timeout (a half-open or
// blackholed link, a stuck server, or a subscriber Redis dropped while its
// backlog was still being read). The driver then closes that connection and
// subscribes again on a new one.
var ErrLinkDead = errors.New("redis: subscription link dead: no PONG within the dead-link timeout")

// ErrNoPermission is wrapped, with config.ErrInvalidConfig, by the error
// HandleLinkDown receives when Redis refuses to subscribe the channel
// (NOPERM: the ACL user lacks the channel). Only the handlers of that
// channel are told; other channels on the shared connection stay up, and
// the driver asks again with backoff. A cache whose first subscription is
// refused fails NewCache with this error. New wraps it too when the user may
// not run PUBLISH (SPUBLISH) at all.
var ErrNoPermission = errors.New("redis: the ACL user may not subscribe to the channel")

// errReconnected is passed to HandleLinkDown when the subscription
// connection answered something it was not asked: go-redis redialled and
// resubscribed by itself (after a failed write), so messages published in
// between may be lost.
var errReconnected = errors.New("redis: subscription connection replaced")

// errBroken is returned by conn.send after a write on the conn failed: the
// one that failed handles it.
var errBroken = errors.New("redis: subscription connection broken")

// DefaultPingInterval is the liveness PING period when SubscribeOptions
// leaves it zero.
const DefaultPingInterval = time.Second

// Backoff between failed attempts to (re)establish the subscription, and
// between attempts to subscribe a channel Redis refused.
const (
	reconnectBackoffMin = 20 * time.Millisecond
	reconnectBackoffMax = time.Second
	refusedBackoffMin   = 100 * time.Millisecond
	refusedBackoffMax   = 5 * time.Second
)

// deadTimeout is how long a subscription may go without a PONG before the
// driver declares the link dead: three missed pings, at least one second.
func deadTimeout(ping time.Duration) time.Duration {
	return max(3*ping, time.Second)
}

// session is the subscription state machine of a hub: one subscription
// connection at a time (a conn, replaced after any error) and the two
// goroutines that serve it: the reader, which receives and calls the
// handlers, and the controller, which sends every command (SUBSCRIBE,
// UNSUBSCRIBE, PING) and declares the link dead when no PONG comes back.
//
// Every command sent is recorded on its conn, in order, and every reply is
// matched with the oldest unanswered one. That is how a reply is attributed
// (a NOPERM refusal fails only the refused channel's handlers), how a
// reply that no command asked for reveals that go-redis redialled behind
// the session's back (a gap: link down and up), and how a subscriber that
// attached after a command was sent is never marked up by that command's
// reply (each command carries the attach generation it covers).
type session struct {
	h      *hub
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{} // cap 1: the subscriber set changed or a channel was refused

	subs    map[*subscription]struct{} // guarded by hub.mu
	gen     uint64                     // guarded by hub.mu: attach counter (subscription.gen)
	conn    *conn                      // guarded by hub.mu; current connection, nil when none or declared dead
	refused map[string]*refusal        // guarded by hub.mu: channels Redis refused to subscribe

	snap      atomic.Pointer[subsSnap] // rebuilt under hub.mu on every change
	lastAlive atomic.Int64             // hub.clock.Mono() of the last PONG/confirmation or of the connection's start
}

// refusal is a channel Redis refused to subscribe (NOPERM).
type refusal struct {
	backoff time.Duration
	retryAt int64 // hub.clock.Mono() of the next attempt; 0 once the controller sent it
	dropped bool  // the controller unsubscribed it (go-redis forgets it), so it is no longer requested
}

// subsSnap is an immutable view of a session's subscribers for the loops.
type subsSnap struct {
	byChannel map[string][]*subscription
	channels  []string // sorted
	ping      time.Duration
	gen       uint64 // session.gen when built: every subscriber in it has gen <= this
}

// subscription is one attached Handler.
type subscription struct {
	hub     *hub
	driver  *Driver
	channel string
	h       invalidation.Handler
	ping    time.Duration
	gen     uint64 // set under hub.mu by session.add: the session's attach counter

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

// conn is one go-redis PubSub, that is one connection: the session never
// lets go-redis redial it (any error closes it and the reader makes a new
// one), so the commands recorded in sent are exactly what the connection was
// asked.
type conn struct {
	ps      *goredis.PubSub
	initial map[string]bool // channels subscribed when it was made (read by the controller)

	mu     sync.Mutex
	sent   []command // guarded by mu: written, reply not read yet, oldest first
	broken bool      // guarded by mu: a write failed; go-redis may be on another connection

	cause error // guarded by hub.mu: why the controller declared it dead
}

type cmdKind uint8

const (
	cmdSubscribe cmdKind = iota
	cmdUnsubscribe
	cmdPing
)

// command is one command sent on a conn.
type command struct {
	kind    cmdKind
	channel string // (un)subscribe only
	gen     uint64 // subscribers with gen <= this were attached when it was sent
	at      int64  // hub.clock.Mono() when it was sent
}

func newSession(h *hub) *session {
	s := &session{h: h, kick: make(chan struct{}, 1), subs: map[*subscription]struct{}{}, refused: map[string]*refusal{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.lastAlive.Store(h.clock.Mono())
	s.rebuild()
	s.wg.Add(2)
	go s.readLoop()
	go s.controlLoop()
	if h.watch != nil {
		s.wg.Add(1)
		go s.watchMaster(h.watch)
	}
	return s
}

// add attaches sub; the caller holds hub.mu.
func (s *session) add(sub *subscription) {
	s.gen++
	sub.gen = s.gen
	s.subs[sub] = struct{}{}
	s.rebuild()
	s.poke()
}

// remove detaches sub, reporting whether it was attached; the caller holds
// hub.mu.
func (s *session) remove(sub *subscription) bool {
	if _, ok := s.subs[sub]; !ok {
		return false
	}
	delete(s.subs, sub)
	s.rebuild()
	s.poke()
	return true
}

// stop ends the session and waits for its goroutines; the session is no
// longer the hub's.
func (s *session) stop() {
	s.cancel()
	s.h.mu.Lock()
	c := s.conn
	s.conn = nil
	s.h.mu.Unlock()
	if c != nil {
		_ = c.ps.Close() // unblocks the reader's Receive
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
	n := &subsSnap{byChannel: map[string][]*subscription{}, gen: s.gen}
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

// send records cmd and writes it. A failed write marks the conn broken: the
// caller declares it dead.
func (c *conn) send(ctx context.Context, h *hub, cmd command) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken {
		return errBroken
	}
	c.sent = append(c.sent, cmd)
	var err error
	switch cmd.kind {
	case cmdSubscribe:
		if h.sharded {
			err = c.ps.SSubscribe(ctx, cmd.channel)
		} else {
			err = c.ps.Subscribe(ctx, cmd.channel)
		}
	case cmdUnsubscribe:
		if h.sharded {
			err = c.ps.SUnsubscribe(ctx, cmd.channel)
		} else {
			err = c.ps.Unsubscribe(ctx, cmd.channel)
		}
	case cmdPing:
		// The payload (the send time) is for whoever reads the traffic;
		// the reader takes the time from the record.
		err = c.ps.Ping(ctx, strconv.FormatInt(cmd.at, 10))
	}
	if err != nil {
		c.broken = true
	}
	return err
}

// take returns the command a reply of kind (for channel) answers: the oldest
// unanswered one. False when that is not such a command, when nothing is
// unanswered or after a failed write: the reply then comes from a connection
// the session did not ask (go-redis redialled), so it proves nothing.
func (c *conn) take(kind cmdKind, channel string) (command, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken || len(c.sent) == 0 {
		return command{}, false
	}
	head := c.sent[0]
	if head.kind != kind || head.channel != channel {
		return command{}, false
	}
	c.sent = append(c.sent[:0], c.sent[1:]...)
	return head, true
}

// newConn makes the session's next connection and subscribes, one command
// per channel, the channels in use (those refused wait for their retry). It
// returns nil when the session is stopping, and the error of the first
// SUBSCRIBE (a failed dial, AUTH refused).
func (s *session) newConn() (*conn, error) {
	h := s.h
	var ps *goredis.PubSub
	if h.sharded {
		ps = h.sub.SSubscribe(s.ctx) // no channels: no I/O yet
	} else {
		ps = h.sub.Subscribe(s.ctx)
	}
	snap := s.snap.Load()
	c := &conn{ps: ps, initial: map[string]bool{}}
	var channels []string
	h.mu.Lock()
	if s.ctx.Err() != nil {
		h.mu.Unlock()
		_ = ps.Close()
		return nil, nil
	}
	for _, ch := range snap.channels {
		if rf := s.refused[ch]; rf != nil && rf.retryAt != 0 {
			continue
		}
		c.initial[ch] = true
		channels = append(channels, ch)
	}
	s.conn = c
	h.mu.Unlock()
	s.lastAlive.Store(h.clock.Mono())
	s.poke() // the controller learns of the new connection
	// The first command dials (and picks the node of the channel's slot
	// for sharded Pub/Sub), before the reader's first Receive could dial a
	// random one. A failure marks the conn broken; the reader then starts
	// over.
	for _, ch := range channels {
		if err := c.send(s.ctx, h, command{kind: cmdSubscribe, channel: ch, gen: snap.gen, at: h.clock.Mono()}); err != nil {
			return c, err
		}
	}
	return c, nil
}

// readLoop receives from the session's connection until the session stops.
func (s *session) readLoop() {
	defer s.wg.Done()
	r := reader{s: s, confirmed: map[string]bool{}, backoff: reconnectBackoffMin}
	for {
		c, err := s.newConn()
		if c == nil {
			return
		}
		if err != nil {
			if s.ctx.Err() == nil && isRefusal(err) {
				r.reach(err) // no reply was read on c yet
			}
			if s.ctx.Err() != nil || !r.restart(c, err) {
				return
			}
			continue
		}
		if !r.run(c) {
			return
		}
	}
}

// reader is the state of a session's reader goroutine.
type reader struct {
	s           *session
	confirmed   map[string]bool // channels subscribed on the current connection, as of the last reply read
	buf         []byte          // payload copy handed to handlers
	backoff     time.Duration
	unreachable bool // the last attempt to connect failed outright
}

// isRefusal reports whether err, on a connection that has not answered
// anything yet, means Redis cannot be reached at all: a failed dial
// (refused, timed out, no route, unresolvable), or a connection closed or
// reset before its first reply (a proxy or load balancer in front of a
// Redis that is down accepts, then resets). A connection that answers
// nothing and stays open (a half-open link, a stuck server) is not one: the
// dead-link timeout ends it with ErrLinkDead.
func isRefusal(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNREFUSED)
}

// reach tells the subscribers whose handler is an invalidation.ReachHandler
// that Redis cannot be reached (err, after every failed dial) or, with a nil
// err, that it can be again (once, after failed dials).
func (r *reader) reach(err error) {
	if err == nil && !r.unreachable {
		return
	}
	r.unreachable = err != nil
	ev := evReachable
	if err != nil {
		ev = evUnreachable
	}
	for _, subs := range r.s.snap.Load().byChannel {
		for _, sub := range subs {
			sub.call(ev, nil, err)
		}
	}
}

// run serves one conn. It returns true when a new one should be made, false
// when the session stops.
func (r *reader) run(c *conn) bool {
	s := r.s
	for answered := false; ; answered = true {
		msg, err := c.ps.Receive(s.ctx)
		if err != nil {
			if s.ctx.Err() != nil {
				return false
			}
			if !answered && isRefusal(err) {
				r.reach(err)
			}
			if isNoPerm(err) {
				if cmd, ok := c.take(cmdSubscribe, c.headChannel()); ok {
					r.refuse(cmd, err)
					continue
				}
			}
			// A network error, or Redis refused a command for the whole
			// connection (MOVED after a failover, ...): start over.
			return r.restart(c, err)
		}
		if !answered {
			r.reach(nil) // a reply: Redis is reachable
		}
		switch m := msg.(type) {
		case *goredis.Message:
			r.deliver(m)
		case *goredis.Pong:
			cmd, ok := c.take(cmdPing, "")
			if !ok {
				return r.restart(c, errReconnected)
			}
			r.pong(cmd)
		case *goredis.Subscription:
			switch m.Kind {
			case "subscribe", "ssubscribe":
				cmd, ok := c.take(cmdSubscribe, m.Channel)
				if !ok {
					return r.restart(c, errReconnected)
				}
				r.subscribed(cmd)
			case "unsubscribe", "sunsubscribe":
				if _, ok := c.take(cmdUnsubscribe, m.Channel); !ok {
					return r.restart(c, errReconnected)
				}
				delete(r.confirmed, m.Channel)
			}
		}
	}
}

// headChannel is the channel of the oldest unanswered command ("" if none).
func (c *conn) headChannel() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.sent) == 0 {
		return ""
	}
	return c.sent[0].channel
}

// restart closes c, reports the link down to every subscriber and waits the
// backoff; false when the session stops meanwhile.
func (r *reader) restart(c *conn, cause error) bool {
	h := r.s.h
	h.mu.Lock()
	if r.s.conn == c {
		r.s.conn = nil
	} else if c.cause != nil {
		cause = c.cause // the controller declared it dead
	}
	h.mu.Unlock()
	_ = c.ps.Close()
	r.linkDown(doorRefusal(cause))
	h.refreshTopology()
	return r.sleep()
}

// isNoPerm reports Redis's refusal of a command for lack of ACL permission.
func isNoPerm(err error) bool {
	var re goredis.Error
	return errors.As(err, &re) && strings.HasPrefix(re.Error(), "NOPERM")
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

// subscribed handles the confirmation of cmd: the channel is subscribed and
// the subscribers attached when cmd was sent are up.
func (r *reader) subscribed(cmd command) {
	s := r.s
	// A cluster node confirmed the subscription, so the cluster agrees on
	// the channel's shard by now: have the publish client's map follow
	// before the catch-up reads the log through it.
	s.h.refreshTopology()
	s.lastAlive.Store(s.h.clock.Mono())
	r.backoff = reconnectBackoffMin
	r.confirmed[cmd.channel] = true
	s.h.mu.Lock()
	delete(s.refused, cmd.channel)
	s.h.mu.Unlock()
	ups := 0
	for _, sub := range s.snap.Load().byChannel[cmd.channel] {
		if sub.gen <= cmd.gen && sub.setState(stateUp, nil) {
			ups++
		}
	}
	if ups > 0 {
		s.h.log().Info("redis: subscription link up", "channel", cmd.channel, "handlers", ups)
	}
}

// refuse handles Redis's refusal of cmd (a SUBSCRIBE): only that channel's
// subscribers go down, and the controller asks again after a backoff.
func (r *reader) refuse(cmd command, replyErr error) {
	s, ch := r.s, cmd.channel
	err := fmt.Errorf("redis: Channel %q: %w (%w; grant it with the ACL rule &%s): %w",
		ch, ErrNoPermission, replyErr, ch, config.ErrInvalidConfig)
	now := s.h.clock.Mono()
	s.h.mu.Lock()
	rf := s.refused[ch]
	if rf == nil {
		rf = &refusal{backoff: refusedBackoffMin}
		s.refused[ch] = rf
	} else {
		rf.backoff = min(2*rf.backoff, refusedBackoffMax)
	}
	rf.retryAt, rf.dropped = now+int64(rf.backoff), false
	s.h.mu.Unlock()
	s.poke()
	downs := 0
	for _, sub := range s.snap.Load().byChannel[ch] {
		if sub.setState(stateDown, err) {
			downs++
		}
	}
	if downs > 0 {
		s.h.log().Error("redis: subscription refused", "channel", ch, "err", replyErr, "handlers", downs)
	}
}

// storeMax stores v in a unless a holds a larger value.
func storeMax(a *atomic.Int64, v int64) {
	for cur := a.Load(); v > cur && !a.CompareAndSwap(cur, v); cur = a.Load() {
	}
}

// pong proves the link alive as of cmd.at (the PING's send time: a PONG
// that waited behind a backlog proves only what was published before its
// PING) for the channels subscribed when the PING was answered: their
// subscribers attached before the PING was sent get their HandleLinkUp now
// if they joined an already subscribed channel, the others
// HandleAliveAt(cmd.at).
func (r *reader) pong(cmd command) {
	if len(r.confirmed) > 0 {
		// Only a connection holding a subscription is alive for us: one
		// whose SUBSCRIBE never took is dead too.
		storeMax(&r.s.lastAlive, cmd.at)
	}
	snap := r.s.snap.Load()
	for _, ch := range snap.channels {
		if !r.confirmed[ch] {
			continue
		}
		for _, sub := range snap.byChannel[ch] {
			if sub.gen <= cmd.gen && !sub.setState(stateUp, nil) {
				sub.alive(cmd.at)
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
		r.s.h.log().Warn("redis: subscription link down", "err", err, "handlers", downs)
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
	evUnreachable
	evReachable
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
	case evUnreachable, evReachable:
		if rh, ok := sub.h.(invalidation.ReachHandler); ok {
			if ev == evUnreachable {
				rh.HandleUnreachable(err)
			} else {
				rh.HandleReachable()
			}
		}
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

// controlLoop sends every command: it keeps the connection's channel set in
// line with the subscribers (refused channels wait for their retry), sends
// the liveness PINGs and declares the link dead when no PONG comes back in
// time or a write fails.
func (s *session) controlLoop() {
	defer s.wg.Done()
	h := s.h
	var (
		cur       *conn
		requested map[string]bool // channels subscribed on cur (sent, not unsubscribed)
		nextPing  int64           // on h.clock.Mono()
		kicked    bool
	)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		snap := s.snap.Load()
		now := h.clock.Mono()
		var drop, subscribe []string
		var retryAt int64 // earliest refused channel's retry
		h.mu.Lock()
		c := s.conn
		if c != cur {
			cur = c
			requested = map[string]bool{}
			if c != nil {
				for ch := range c.initial {
					requested[ch] = true
				}
			}
		}
		for ch, rf := range s.refused {
			if _, ok := snap.byChannel[ch]; !ok {
				delete(s.refused, ch)
				continue
			}
			if !rf.dropped && c != nil {
				// go-redis remembers every channel it was asked and
				// resubscribes them together: forget the refused one, so
				// it cannot take the others down with it.
				rf.dropped = true
				if requested[ch] {
					delete(requested, ch)
					drop = append(drop, ch)
				}
			}
			if rf.retryAt != 0 && now >= rf.retryAt {
				rf.retryAt = 0
			}
			if rf.retryAt != 0 && (retryAt == 0 || rf.retryAt < retryAt) {
				retryAt = rf.retryAt
			}
		}
		for _, ch := range snap.channels {
			if rf := s.refused[ch]; c != nil && !requested[ch] && (rf == nil || rf.retryAt == 0) {
				requested[ch] = true
				subscribe = append(subscribe, ch)
			}
		}
		h.mu.Unlock()

		if c != nil {
			send := func(kind cmdKind, ch string) bool {
				err := c.send(s.ctx, h, command{kind: kind, channel: ch, gen: snap.gen, at: h.clock.Mono()})
				if err != nil && s.ctx.Err() == nil && !errors.Is(err, errBroken) {
					s.declareDead(c, fmt.Errorf("redis: write on the subscription connection: %w", err))
				}
				return err == nil
			}
			ok := true
			for _, ch := range drop {
				ok = ok && send(cmdUnsubscribe, ch)
			}
			for _, ch := range subscribe {
				ok = ok && send(cmdSubscribe, ch)
			}
			for ch := range requested {
				if _, in := snap.byChannel[ch]; !in && ok {
					delete(requested, ch)
					ok = send(cmdUnsubscribe, ch)
				}
			}
			// Besides the periodic proof, a PING after every change lets
			// subscribers that joined an already confirmed channel learn
			// (in order, from the reader) that the link is up.
			due := now >= nextPing
			if ok && (due || kicked) {
				ok = send(cmdPing, "")
			}
			if due {
				nextPing = now + int64(snap.ping)
			}
			if len(requested) == 0 {
				// Nothing asked (every channel refused): nothing to prove.
				s.lastAlive.Store(now)
			} else if ok && time.Duration(now-s.lastAlive.Load()) > deadTimeout(snap.ping) {
				s.declareDead(c, ErrLinkDead)
			}
		} else {
			nextPing = now + int64(snap.ping)
		}

		wake := nextPing
		if retryAt != 0 && retryAt < wake {
			wake = retryAt
		}
		timer.Reset(max(time.Duration(wake-h.clock.Mono()), time.Millisecond))
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

// declareDead closes c; the reader then reports cause and subscribes on a
// new connection.
func (s *session) declareDead(c *conn, cause error) {
	s.h.mu.Lock()
	if s.conn != c {
		s.h.mu.Unlock()
		return
	}
	s.conn, c.cause = nil, cause
	s.h.mu.Unlock()
	s.h.log().Warn("redis: subscription connection dead; reconnecting", "err", cause)
	_ = c.ps.Close()
}
