// Package engine is the invalidation protocol between a local cache (the
// Target) and a broadcast bus (an invalidation.Driver). It owns everything
// that makes invalidation trustworthy whatever the driver, implementing the
// rules of the consistency contract (numbered as in the README's "What
// "invalidation works" means"):
//
//  1. Self-suppression: messages carrying this node's origin id are counted
//     (Stats.IgnoredOwn) and ignored. The origin is read from the header
//     (wire.PeekOrigin) before anything is decoded: every broadcast comes
//     back to its sender, and decoding it only to drop it is wasted work.
//  2. At-least-once publish: BroadcastDelete and BroadcastClear only enqueue
//     into an outbox and never wait on the network: the caller appends the
//     key under a short lock. Duplicate pending keys coalesce when the
//     publisher takes them (a backlog the publisher cannot drain is
//     coalesced a little at each enqueue, bounding memory). The keys
//     waiting to be published are bounded (Config.OutboxMaxKeys distinct
//     keys, Config.OutboxMaxBytes of key bytes): past either they collapse
//     into one clear (Stats.OutboxOverflows, a warning), so an outage of
//     any length costs bounded memory and peers one clear. A pending clear
//     subsumes the keys queued before it and those queued after it until
//     the publisher takes it: it leaves after them and receivers apply it as
//     a whole; later keys go out after it. One publisher goroutine keeps
//     this node's messages in order: when it is idle a broadcast leaves at
//     once; what arrives while a publish is in flight goes out together in
//     the next one (group commit). A failed publish is retried with the same
//     sequence numbers, with jittered exponential backoff between
//     RetryBackoffMin and RetryBackoffMax, for as long as the engine lives.
//     Flush waits until what was enqueued before it has been published.
//     Close flushes for at most FlushTimeout; broadcasts still unsent then
//     are lost: they are counted in Stats.BroadcastsDropped, logged at error
//     level with the number of keys, and reported by Close's error
//     (ErrUnsent).
//  3. Gap = catch up, else clear: every HandleLinkUp (first subscribe or
//     resubscribe), a sequence jump from a known origin, a logged message
//     whose id does not increase or whose epoch differs from the cursor's,
//     an envelope of an unknown version, a malformed envelope and a lapse
//     of liveness (rule 4) count as a gap (Stats.Gaps). If the driver keeps
//     a replay log (invalidation.Replayer), the engine keeps a cursor: the
//     position of the last log entry applied (HandleLogMessage moves it
//     forward only, within one epoch; an entry in flight at or before it is
//     applied and leaves it). On a gap it replays the log after the cursor
//     on the subscription goroutine, applying each entry as it is read
//     (self-suppressed; entries are not accumulated, so a backlog of any
//     length takes bounded memory), and serves again without clearing if
//     and only if the replay proved continuity and every entry was strictly
//     after the previous one in the cursor's epoch and decoded
//     (Stats.CatchUps, Stats.KeysReplayed). Otherwise (no log or the log
//     turned off, no cursor, invalidation.ErrNoContinuity, any other
//     error, a bad entry; also at once for the first subscribe, a live
//     malformed or unknown-version envelope, a live id going backwards,
//     and a gap after a peer's envelope or a raw key arrived outside the
//     log: whoever publishes outside the log may have published while the
//     node was away, where no catch-up can see it) the engine
//     reads the log's head as its new cursor and then, with GapStrategy
//     "clear", calls Target.InvalidateAll: every entry up to the head was
//     published before the clear. Clears are counted by reason
//     (Stats.ClearsByReason, the Clear* constants). The node does not
//     serve between the gap and the end of its catch-up or clear, even with
//     MaxStaleness 0. With GapStrategy "none" nothing clears, and a
//     catch-up still applies what it can. Without a cursor the first live
//     logged message sets it: no gap since the last clear means nothing
//     before it was missed. Duplicates (seq <= last seen) are applied
//     again, harmlessly. The per-origin table is bounded (MaxOrigins) so
//     garbage cannot grow memory; an origin it forgot counts as a gap on
//     its next message unless that is the sender's first, so eviction
//     never hides a loss. Gap handling is bounded so that a publisher
//     flooding the channel with bad messages (each one a gap) is not
//     amplified onto the bus: at most GapReadsPerSecond log reads (a
//     catch-up, or the head read before a clear) a second, in bursts of as
//     many; past the budget a gap clears without reading (ClearGapFlood)
//     and keeps its cursor (an older cursor is sound: the next catch-up
//     replays more, or fails and clears). A clear on a Target that reports
//     nothing cached since its last clear (the optional Clean method)
//     keeps its cursor too and counts as collapsed (Stats.ClearsCollapsed),
//     not in ClearsOnGap.
//  4. Bounded staleness: with MaxStaleness > 0 the node serves only while
//     its subscription was proven alive (HandleLinkUp, HandleAlive,
//     HandleAliveAt) within MaxStaleness. A round-trip proof counts from
//     when the round trip started (HandleAliveAt), not from when its answer
//     arrived: on a lagging link the answer proves only what was published
//     before it was sent. A timer reset by each proof turns serving off at
//     the deadline; Serving also compares the deadline with the monotonic
//     clock, because a starved process runs the timer late. Every liveness
//     decision (proofs, deadline, timer, Stats.SinceAlive) runs on the
//     monotonic clock, so a step of the wall clock neither stretches nor
//     cuts the bound. The cache's Get checks MayServe before its lookup
//     and ServingWithin after it: one clock reading per hit with the bound
//     on, none with it off. A link-down the driver reports (HandleLinkDown) does not stop
//     serving at once: the node serves until its last proof plus
//     MaxStaleness, as for a loss it cannot see, since what it may miss
//     was published after that proof either way. With
//     Config.OutageStaleness, while the driver reports the bus unreachable
//     (invalidation.ReachHandler: dials refused or timed out, not a
//     connection that is made but silent), the deadline is the last proof
//     plus OutageStaleness, also after a lapse; reads served past
//     MaxStaleness are counted (Stats.OutageReads), and a load is not
//     cached past MaxStaleness (ServingStrict). HandleReachable restores
//     the strict deadline. After a link-down or a lapse, serving resumes
//     normally only after the link is proven alive again and the gap was
//     recovered (rule 3: caught up, or cleared with GapStrategy "clear").
//     The engine asks the driver for a ping every MaxStaleness/4 (at least
//     MinPingInterval). MaxStaleness 0 disables the bound: Serving is
//     always true.
//  5. The Target is called synchronously on the driver's subscription
//     goroutine, before the message counts as applied, so the cache's
//     race-safe loads see every invalidation.
//  6. The engine publishes only what Broadcast* queued.
//  7. Any payload is a valid message, a raw key (no magic prefix; empty
//     means clear), or counted in Stats.Malformed and logged at warn level;
//     parsing is total, nothing panics.
//
// The Target must not call Close from inside InvalidateKeys/InvalidateAll
// (Close waits for the subscription goroutine that is running the call).
package engine
