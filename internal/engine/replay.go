package engine

import (
	"errors"
	"fmt"
	"time"

	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/wire"
	"github.com/halilbulentorhon/invacache-go/invalidation"
)

// Reasons for a whole-cache clear, the keys of Stats.ClearsByReason. They are
// lower-case snake_case so they serve as metric label values unchanged.
const (
	// ClearFirstSubscribe: the node's first link-up (what it cached before
	// it was subscribed may be stale).
	ClearFirstSubscribe = "first_subscribe"
	// ClearReplayDisabled: a gap, and the driver keeps no replay log (it
	// does not implement invalidation.Replayer, or its log is turned off).
	ClearReplayDisabled = "replay_disabled"
	// ClearNoCursor: a gap before the node knew its position in the log
	// (reading the log's head failed at the last clear).
	ClearNoCursor = "no_cursor"
	// ClearNoContinuity: the log could not prove that it holds every entry
	// after the node's cursor (trimmed past it, a new epoch after a restart
	// without persistence, a failover that lost the log's tail), or it lacks
	// a message that a sender's sequence numbers show the node missed.
	ClearNoContinuity = "no_continuity"
	// ClearReplayError: reading the log failed (network, timeout, close).
	ClearReplayError = "replay_error"
	// ClearMalformed: an envelope that failed to decode, received live or
	// read from the log.
	ClearMalformed = "malformed"
	// ClearUnknownVersion: an envelope of a wire version this node cannot
	// read, received live or read from the log.
	ClearUnknownVersion = "unknown_version"
	// ClearIDBackwards: a log entry whose id is not after the previous one
	// (live, or within a replay).
	ClearIDBackwards = "id_backwards"
	// ClearUnloggedPeer: a gap after a peer's envelope or a raw key arrived
	// outside the log (a node with replay disabled, an operator's PUBLISH):
	// the log cannot cover what such a sender published.
	ClearUnloggedPeer = "unlogged_peer"
	// ClearGapFlood: a gap while the budget of log reads for gap handling
	// (GapReadsPerSecond) was spent: the node clears instead of catching up,
	// so a flood of bad messages costs the bus no more reads per second.
	ClearGapFlood = "gap_flood"
	// ClearPeer: a peer's Clear with invalidation (or an empty raw
	// payload). Not a gap: not counted in ClearsOnGap.
	ClearPeer = "peer_clear"
)

// clearReasons lists every reason, in the order of counters.clears.
var clearReasons = [...]string{
	ClearFirstSubscribe, ClearReplayDisabled, ClearNoCursor, ClearNoContinuity, ClearReplayError,
	ClearMalformed, ClearUnknownVersion, ClearIDBackwards, ClearUnloggedPeer, ClearGapFlood, ClearPeer,
}

// ClearReasons returns every reason Stats.ClearsByReason may hold.
func ClearReasons() []string { return append([]string(nil), clearReasons[:]...) }

// countClear counts one clear for reason.
func (e *Engine) countClear(reason string) {
	for i, r := range clearReasons {
		if r == reason {
			e.st.clears[i].Add(1)
			return
		}
	}
}

// Errors a replay stops at; each maps to a clear reason.
var (
	errReplayBackwards  = errors.New("engine: replayed log entry id not after the previous one")
	errReplayEpoch      = fmt.Errorf("engine: replayed log entry from another epoch: %w", invalidation.ErrNoContinuity)
	errReplayMalformed  = errors.New("engine: malformed envelope in the log")
	errReplayVersion    = errors.New("engine: envelope of an unknown wire version in the log")
	errReplaySeqMissing = fmt.Errorf("engine: a sender's sequence jumps in the replayed log: %w", invalidation.ErrNoContinuity)
)

// replayReason is the clear reason for a failed catch-up.
func replayReason(err error) string {
	switch {
	case errors.Is(err, invalidation.ErrNoContinuity):
		return ClearNoContinuity
	case errors.Is(err, invalidation.ErrReplayDisabled):
		return ClearReplayDisabled
	case errors.Is(err, errReplayBackwards):
		return ClearIDBackwards
	case errors.Is(err, errReplayMalformed):
		return ClearMalformed
	case errors.Is(err, errReplayVersion):
		return ClearUnknownVersion
	default:
		return ClearReplayError
	}
}

// recoverGap makes the node whole after a possible loss of messages, on the
// subscription goroutine, without serving in between: unless force names a
// clear reason, it catches up from the driver's log after the cursor; if it
// cannot (no log, no cursor, no continuity, an error, a bad entry), it reads
// the log's head as the new cursor and clears (GapStrategy "clear"). It
// returns the clear reason ("" when caught up) and the keys replayed.
func (e *Engine) recoverGap(force string) (reason string, replayed uint64, err error) {
	was := e.suspendServing()
	defer e.resumeServing(was)
	reason = force
	if reason == "" {
		switch {
		case e.replayer == nil:
			reason = ClearReplayDisabled
		case !e.hasCursor:
			reason = e.noCursor
		case e.unlogged:
			reason = ClearUnloggedPeer
		}
	}
	if reason == "" && !e.reads.take(e.clock.Mono()) {
		reason = ClearGapFlood
	}
	if reason == "" {
		replayed, err = e.replay()
		if err == nil {
			e.st.catchUps.Add(1)
			return "", replayed, nil
		}
		reason = replayReason(err)
	}
	// The baselines say what was applied since the last clear; a clear (or
	// a loss left unrepaired) makes them moot.
	clear(e.origins)
	e.evicted = false
	// Nothing cached since the last clear: this clear changes nothing, and
	// the cursor that clear read still covers the (empty) cache.
	// A cursor the log disowned (no continuity) is replaced all the same.
	collapsed := e.cfg.GapStrategy == config.GapClear && e.hasCursor && reason != ClearNoContinuity && e.targetClean()
	// Read the head before clearing: every entry up to it was published
	// before the clear, so the cleared cache cannot hold what they
	// invalidated, and the next gap replays from there. With the budget of
	// log reads spent, the cursor stays where it is: an older cursor is
	// still sound (the next catch-up replays more), only its epoch may be
	// stale, and then that catch-up fails and clears.
	if !collapsed && e.reads.take(e.clock.Mono()) {
		e.resetCursor()
	}
	if e.cfg.GapStrategy == config.GapClear {
		// Even a collapsed clear runs: it is cheap on an empty cache and
		// keeps loads that started before the gap from caching (rule 5).
		e.target.InvalidateAll()
		e.unlogged = false
		if collapsed {
			e.st.clearsCollapsed.Add(1)
		} else {
			e.st.clearsOnGap.Add(1)
			e.countClear(reason)
		}
	}
	return reason, replayed, err
}

// targetClean reports whether the Target says nothing was cached since its
// last InvalidateAll (a Target without the optional Clean method never is).
func (e *Engine) targetClean() bool {
	c, ok := e.target.(interface{ Clean() bool })
	return ok && c.Clean()
}

// GapReadsPerSecond bounds the log reads (a catch-up, or the head read
// before a clear) that gap handling makes per second, with bursts of as
// many: a publisher that floods the channel with bad messages (each one a
// gap) must not be amplified into a flood of reads on the bus. Past the
// budget a gap clears without reading (ClearGapFlood), keeping its cursor.
const GapReadsPerSecond = 10

// tokenBucket is the budget of gap reads, owned by the subscription
// goroutine.
type tokenBucket struct {
	tokens float64
	at     int64 // clock.Mono() of the last refill; 0 = full
}

// take spends a token if one is left at now.
func (b *tokenBucket) take(now int64) bool {
	if b.at == 0 {
		b.tokens = GapReadsPerSecond
	} else {
		b.tokens = min(GapReadsPerSecond, b.tokens+float64(now-b.at)*GapReadsPerSecond/float64(time.Second))
	}
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// resetCursor sets the cursor to the log's head, or forgets it when the
// head cannot be read.
func (e *Engine) resetCursor() {
	e.hasCursor = false
	e.noCursor = ClearReplayDisabled
	if e.replayer == nil {
		return
	}
	head, err := e.replayer.LogHead(e.pubCtx)
	if err != nil {
		if !errors.Is(err, invalidation.ErrReplayDisabled) {
			e.noCursor = ClearNoCursor
			e.log.Warn("engine: cannot read the replay log's head; the next gap clears", "err", err)
		}
		return
	}
	e.cursor, e.hasCursor = head, true
}

// replay applies every log entry after the cursor and moves the cursor to
// the last one. It stops at the first entry that is not strictly after the
// previous one in the cursor's epoch, or that does not decode. Entries are
// applied as they arrive: nothing is accumulated.
func (e *Engine) replay() (uint64, error) {
	after := e.cursor
	last := after
	var keys uint64
	_, err := e.replayer.Replay(e.pubCtx, after, func(pos invalidation.LogPos, payload []byte) error {
		if pos.Epoch != after.Epoch {
			return errReplayEpoch
		}
		if pos.ID.Compare(last.ID) <= 0 {
			return fmt.Errorf("%w: %s after %s", errReplayBackwards, pos.ID, last.ID)
		}
		n, err := e.applyReplayed(payload)
		if err != nil {
			return err
		}
		keys += n
		last = pos
		return nil
	})
	e.st.keysReplayed.Add(keys)
	// The cursor is what was applied, whatever Replay returned: on an error
	// the node clears and resets it anyway.
	e.cursor = last
	return keys, err
}

// applyReplayed applies one log entry: a peer's envelope like a live one,
// its sequence number checked against the sender's baseline (a jump fails
// the catch-up), the node's own entries skipped.
func (e *Engine) applyReplayed(payload []byte) (uint64, error) {
	if origin, ok := wire.PeekOrigin(payload); ok && origin == e.id {
		return 0, nil
	}
	m, err := wire.Decode(payload)
	switch {
	case errors.Is(err, wire.ErrUnknownVersion):
		return 0, fmt.Errorf("%w: %w", errReplayVersion, err)
	case err != nil:
		e.st.malformed.Add(1)
		return 0, fmt.Errorf("%w: %w", errReplayMalformed, err)
	case !m.Raw && m.Origin == e.id:
		return 0, nil
	case !m.Raw:
		if err := e.trackReplayed(m.Origin, m.Seq); err != nil {
			return 0, err
		}
	}
	var keys uint64
	for _, op := range m.Ops {
		if op.Clear {
			e.target.InvalidateAll()
			e.countClear(ClearPeer)
		} else if len(op.Keys) > 0 {
			e.target.InvalidateKeys(op.Keys)
			keys += uint64(len(op.Keys))
		}
	}
	return keys, nil
}

// checkLive checks a live logged message's position against the live
// stream before it is applied: ids increase within an epoch (an id not
// after the last one is a gap that clears), and a position in another epoch
// than the cursor's means the log was recreated (a gap: the replay from the
// old cursor proves no continuity and clears).
func (e *Engine) checkLive(pos invalidation.LogPos) {
	switch {
	case e.hasLive && pos.Epoch == e.lastLive.Epoch && pos.ID.Compare(e.lastLive.ID) <= 0:
		e.gapForce(ClearIDBackwards, "log entry id went backwards", nil, "pos", pos.String(), "last", e.lastLive.String())
	case e.hasCursor && pos.Epoch != e.cursor.Epoch:
		e.gap("log epoch changed", nil, "pos", pos.String(), "cursor", e.cursor.String())
	}
	e.lastLive, e.hasLive = pos, true
}

// advanceCursor moves the cursor to a live logged message just applied: forward
// only, within the cursor's epoch. Without a cursor the node adopts pos:
// since its last clear no gap was seen, so every entry before pos that the
// clear does not cover was delivered.
func (e *Engine) advanceCursor(pos invalidation.LogPos) {
	switch {
	case !e.hasCursor:
		if e.replayer != nil {
			e.cursor, e.hasCursor = pos, true
		}
	case pos.Epoch == e.cursor.Epoch && pos.ID.Compare(e.cursor.ID) > 0:
		e.cursor = pos
	}
}

// suspendServing turns serving off for a catch-up or a clear and reports
// whether it was on; resumeServing(was) turns it back on unless the link
// went down or lapsed meanwhile (the next proof of life turns it on then).
func (e *Engine) suspendServing() bool {
	e.liveMu.Lock()
	defer e.liveMu.Unlock()
	return e.serving.Swap(false)
}

func (e *Engine) resumeServing(was bool) {
	if !was {
		return
	}
	e.liveMu.Lock()
	defer e.liveMu.Unlock()
	if e.timer == nil || (e.linkUp && !e.expired && !e.liveStopped) {
		e.serving.Store(true)
		e.servingTurnedOnLocked()
	}
}
