package engine

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/monotime"
	"github.com/halilbulentorhon/invacache-go/internal/wire"
	"github.com/halilbulentorhon/invacache-go/invalidation"
)

// handler is the engine's invalidation.Handler, kept unexported so the
// Engine's API does not expose the driver callbacks.
type handler struct{ e *Engine }

var _ invalidation.Handler = handler{}

// HandleLogMessage applies one payload that is the log entry at pos: the
// live stream's ids must increase and stay in the cursor's epoch (else it is
// a gap), then the payload is applied like HandleMessage and the cursor
// moves to pos. A gap found while applying it (a sequence jump) replays
// from the cursor before it moves.
func (h handler) HandleLogMessage(pos invalidation.LogPos, payload []byte) {
	e := h.e
	e.checkLive(pos)
	e.receive(payload, true)
	e.advanceCursor(pos)
}

// HandleMessage applies one payload that is not in the driver's log.
func (h handler) HandleMessage(payload []byte) { h.e.receive(payload, false) }

// receive applies one payload: rules 1, 3 and 7.
func (e *Engine) receive(payload []byte, logged bool) {
	e.st.received.Add(1)
	// The bus echoes every broadcast back to its sender: recognize them
	// from the header, before paying for a decode.
	if origin, ok := wire.PeekOrigin(payload); ok && origin == e.id {
		e.st.ignoredOwn.Add(1)
		return
	}
	m, err := wire.Decode(payload)
	switch {
	case errors.Is(err, wire.ErrUnknownVersion):
		// The log holds the same bytes: replaying cannot help.
		e.gapForce(ClearUnknownVersion, "message of an unknown wire version", err)
		return
	case err != nil:
		// It claimed to be ours, so it may have carried invalidations.
		e.st.malformed.Add(1)
		e.gapForce(ClearMalformed, "malformed envelope", err, "bytes", len(payload), "prefix", fmt.Sprintf("%.40q", payload))
		return
	case m.Raw:
		e.st.raw.Add(1)
	case m.Origin == e.id:
		e.st.ignoredOwn.Add(1)
		return
	default:
		e.track(m.Origin, m.Seq)
	}
	if !logged && e.replayer != nil {
		// A peer's envelope or a raw key (an operator's redis-cli PUBLISH)
		// outside the log: the log cannot hold what such a sender published
		// while this node was away, so until the next clear a gap clears
		// instead of trusting a catch-up.
		e.unlogged = true
	}
	for _, op := range m.Ops {
		if op.Clear {
			e.target.InvalidateAll()
			e.countClear(ClearPeer)
		} else if len(op.Keys) > 0 {
			e.target.InvalidateKeys(op.Keys)
		}
	}
	e.st.applied.Add(1)
}

// track records seq from origin and declares a gap on a jump. The first
// message from an origin since the last clear (or failed catch-up) sets its
// baseline; seq <= last is a duplicate (a retried publish) and not a gap.
// The baselines survive a resubscribe that caught up (the replay moved them
// on), so a message lost around the resubscribe is a jump too. Once the
// table has evicted origins, an unknown origin may be an evicted one whose
// losses the table no longer sees: unless its message is a sender's first
// (seq 1), it counts as a gap.
func (e *Engine) track(origin, seq uint64) {
	st, known := e.origins[origin]
	switch {
	case known && st.jumpsTo(seq):
		e.gap("sequence gap", nil, "origin", fmt.Sprintf("%016x", origin), "last", st.seq, "seq", seq)
	case !known && e.evicted && seq > 1:
		e.gap("message from an origin the bounded table forgot", nil, "origin", fmt.Sprintf("%016x", origin), "seq", seq)
	}
	e.note(origin, seq) // after the gap: its replay may have moved the baseline
}

// trackReplayed records seq from origin for a replayed log entry. A jump
// means the log lacks a message the node may have missed (published where
// no log the node reads holds it: a cluster master restarted empty that took
// a publish before it learned it lost its slot), so the catch-up fails.
func (e *Engine) trackReplayed(origin, seq uint64) error {
	if st, known := e.origins[origin]; known && st.jumpsTo(seq) {
		return fmt.Errorf("%w: the log lacks sender %016x's messages %d to %d", errReplaySeqMissing, origin, st.seq+1, seq-1)
	}
	e.note(origin, seq)
	return nil
}

// jumpsTo reports whether seq skips a sequence number after the baseline
// (a duplicate, seq <= baseline, does not).
func (st originState) jumpsTo(seq uint64) bool { return seq > st.seq && seq-st.seq > 1 }

// note moves origin's baseline to seq (forward only) and marks it heard.
func (e *Engine) note(origin, seq uint64) {
	e.tick++
	st, known := e.origins[origin]
	if !known && len(e.origins) >= MaxOrigins {
		e.evictOrigins()
	}
	if !known || seq > st.seq {
		st.seq = seq
	}
	st.seen = e.tick
	e.origins[origin] = st
}

// evictOrigins forgets the quarter of origins least recently heard from.
func (e *Engine) evictOrigins() {
	seen := make([]uint64, 0, len(e.origins))
	for _, st := range e.origins {
		seen = append(seen, st.seen)
	}
	slices.Sort(seen)
	cutoff := seen[len(seen)/4]
	for o, st := range e.origins {
		if st.seen <= cutoff {
			delete(e.origins, o)
		}
	}
	e.evicted = true
}

// reasonFirstSubscribe is the gap reason of a node's first link-up.
const reasonFirstSubscribe = "first subscribe"

// gap handles a possible loss of messages (rule 3): catch up from the log,
// else clear.
func (e *Engine) gap(reason string, err error, attrs ...any) { e.gapForce("", reason, err, attrs...) }

// gapForce is gap with the clear reason force ("" to try a catch-up first).
func (e *Engine) gapForce(force, reason string, err error, attrs ...any) {
	clearReason, replayed, rerr := e.recoverGap(force)
	e.st.gaps.Add(1) // after the recovery: a reader that sees it sees its effects
	cleared := clearReason != "" && e.cfg.GapStrategy == config.GapClear
	// A flood of garbage must not flood the log: per reason, at most one
	// warning per second, carrying how many were suppressed before it.
	w := e.gapLog[reason]
	if w == nil {
		w = &logWindow{}
		e.gapLog[reason] = w
	}
	now := time.Now()
	if now.Sub(w.at) < time.Second {
		w.skipped++
		return
	}
	attrs = append(attrs, "reason", reason, "cleared", cleared)
	if clearReason == "" {
		attrs = append(attrs, "caughtUp", true, "keysReplayed", replayed)
	} else {
		attrs = append(attrs, "clearReason", clearReason)
	}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	if rerr != nil {
		attrs = append(attrs, "replayErr", rerr)
	}
	if w.skipped > 0 {
		attrs = append(attrs, "suppressed", w.skipped)
	}
	w.at, w.skipped = now, 0
	switch {
	case reason == reasonFirstSubscribe:
		// Counted like any resubscribe (what was cached before it is
		// dropped), but nothing was missed under a live link: no warning.
		e.log.Info("engine: subscribed", attrs...)
		return
	case clearReason == "":
		e.log.Info("engine: caught up from the replay log", attrs...)
		return
	}
	e.log.Warn("engine: invalidations may have been missed", attrs...)
}

// HandleLinkUp: a (re)subscribe may have missed anything, so it is a gap
// (the first one clears; later ones catch up from the log if they can);
// the live log stream restarts, and so do the sequence baselines unless the
// catch-up moved them on.
func (h handler) HandleLinkUp() {
	e := h.e
	e.hasLive = false
	select {
	case <-e.linked:
		e.gap("subscription re-established", nil)
	default:
		e.gapForce(ClearFirstSubscribe, reasonFirstSubscribe, nil)
	}
	e.liveMu.Lock()
	e.linkUp, e.expired, e.outage = true, false, false
	e.liveMu.Unlock()
	e.linkUpNow.Store(true)
	e.outageNow.Store(false)
	e.aliveAt(e.clock.Mono())
	e.linkOnce.Do(func() { close(e.linked) })
}

// HandleLinkDown records the loss. The node keeps serving until its last
// proof of life plus MaxStaleness, as it would had it not learnt of the
// loss (a half-open link): what it may miss is what was published after
// that proof, so the bound holds either way, and a known loss (a Redis
// restart, a reset connection) no longer costs more than an unknown one.
// The next HandleLinkUp is a gap: the node catches up or clears before it
// serves again.
func (h handler) HandleLinkDown(err error) {
	e := h.e
	e.liveMu.Lock()
	e.linkUp = false
	e.liveMu.Unlock()
	e.linkUpNow.Store(false)
	e.log.Warn("engine: subscription lost", "err", err)
	if errors.Is(err, config.ErrInvalidConfig) {
		select {
		case <-e.linked:
		default: // refused before it ever worked: WaitLinkUp reports it
			e.refuseOnce.Do(func() {
				e.refusedErr = err
				close(e.refused)
			})
		}
	}
}

var _ invalidation.ReachHandler = handler{}

// HandleUnreachable: the driver could not connect to the bus at all (a
// refused or timed-out dial) while the link is down. With OutageStaleness
// the node serves until its last proof of life plus OutageStaleness, even
// if MaxStaleness had already lapsed: nothing it holds was invalidated
// before that proof without it knowing, and the bound it serves under is
// OutageStaleness. Reads past MaxStaleness are counted (ServingWithin).
func (h handler) HandleUnreachable(err error) {
	e := h.e
	e.liveMu.Lock()
	defer e.liveMu.Unlock()
	if e.linkUp || e.liveStopped || e.outage {
		return
	}
	e.outage = true
	e.outageNow.Store(true)
	at := e.lastAlive.Load()
	if e.timer == nil || e.cfg.OutageStaleness == 0 || at == 0 {
		return
	}
	rest := time.Duration(at + int64(e.cfg.OutageStaleness) - e.clock.Mono())
	if rest <= 0 {
		return
	}
	e.deadline.Store(at + int64(e.cfg.OutageStaleness)) // before serving: Serving reads both
	if !e.serving.Swap(true) {
		e.servingTurnedOnLocked()
	}
	e.timer.Reset(rest)
	e.log.Warn("engine: bus unreachable; serving cached values under OutageStaleness",
		"err", err, "outageStaleness", e.cfg.OutageStaleness, "left", rest)
}

// HandleReachable: a connection to the bus was made again (the link is not
// up yet). The outage is over, so the strict bound is back: past its last
// proof plus MaxStaleness the node stops serving until HandleLinkUp has
// caught up or cleared.
func (h handler) HandleReachable() {
	e := h.e
	e.liveMu.Lock()
	defer e.liveMu.Unlock()
	if !e.outage {
		return
	}
	e.outage = false
	e.outageNow.Store(false)
	if e.timer == nil || e.liveStopped {
		return
	}
	strict := e.lastAlive.Load() + int64(e.cfg.MaxStaleness)
	e.deadline.Store(strict)
	if rest := time.Duration(strict - e.clock.Mono()); rest > 0 {
		e.timer.Reset(rest)
		return
	}
	if e.serving.Swap(false) {
		e.expired = true
	}
}

// HandleAlive is a proof that the subscription path works now.
func (h handler) HandleAlive() { h.e.aliveAt(h.e.clock.Mono()) }

// HandleAliveAt is a proof that the subscription delivered everything
// published before sent (a round trip that started at sent just completed).
// On a lagging link the proof is older than its arrival, and it counts from
// sent: a PONG that waited behind a backlog must not let the node serve for
// another MaxStaleness while the messages behind it may be lost. Only sent's
// monotonic clock reading counts (a wall clock step changes nothing), and a
// proof never counts later than its arrival.
func (h handler) HandleAliveAt(sent time.Time) {
	e := h.e
	now := e.clock.Mono()
	e.aliveAt(min(monotime.Of(sent), now))
}

// aliveAt records a proof of life as of at (a monotime reading) and
// (re)arms the staleness deadline at at + MaxStaleness. A proof already
// older than MaxStaleness changes nothing. After a lapse it clears (strategy
// "clear") before serving again.
func (e *Engine) aliveAt(at int64) {
	// lastAlive only moves forward: an older proof adds nothing.
	for cur := e.lastAlive.Load(); at > cur && !e.lastAlive.CompareAndSwap(cur, at); cur = e.lastAlive.Load() {
	}
	if e.timer == nil {
		return
	}
	if e.rest() <= 0 {
		return
	}
	e.liveMu.Lock()
	up, lapsed := e.linkUp, e.lapsedLocked()
	e.liveMu.Unlock()
	if !up {
		return
	}
	if lapsed {
		e.gap("subscription was not proven alive within MaxStaleness", nil)
	}
	e.liveMu.Lock()
	if rest := e.rest(); e.linkUp && !e.liveStopped && rest > 0 {
		if !lapsed && e.lapsedLocked() {
			// The deadline passed since the check above: the next proof
			// clears before serving resumes.
			e.liveMu.Unlock()
			return
		}
		e.expired = false
		e.deadline.Store(e.lastAlive.Load() + int64(e.cfg.MaxStaleness)) // before serving: Serving reads both
		e.serving.Store(true)
		e.servingTurnedOnLocked()
		e.timer.Reset(rest)
	}
	e.liveMu.Unlock()
}

// rest is how long the last proof keeps the node serving: lastAlive +
// MaxStaleness - now, on the monotonic clock.
func (e *Engine) rest() time.Duration {
	return time.Duration(e.lastAlive.Load() + int64(e.cfg.MaxStaleness) - e.clock.Mono())
}

// lapsedLocked reports whether serving lapsed since the last proof: the
// timer marked it, or the deadline passed and the timer has not run yet
// (Serving already refuses then). The caller holds liveMu.
func (e *Engine) lapsedLocked() bool {
	return e.expired || (e.serving.Load() && e.clock.Mono() >= e.deadline.Load())
}

// expire runs on the timer goroutine at the staleness deadline. A proof of
// life that raced with the timer wins: the timer is re-armed for its rest.
func (e *Engine) expire() {
	e.liveMu.Lock()
	defer e.liveMu.Unlock()
	if !e.serving.Load() || e.liveStopped {
		return
	}
	bound := e.cfg.MaxStaleness
	if e.outage && e.cfg.OutageStaleness > 0 {
		bound = e.cfg.OutageStaleness
	}
	if rest := time.Duration(e.lastAlive.Load() + int64(bound) - e.clock.Mono()); rest > 0 {
		e.timer.Reset(rest)
		return
	}
	e.serving.Store(false)
	e.expired = true
	e.log.Warn("engine: subscription not proven alive within its bound; not serving cached values", "bound", bound, "outage", e.outage)
}

// logWindow rate-limits the warnings of one gap reason.
type logWindow struct {
	at      time.Time // last warning
	skipped int       // warnings suppressed since at
}
