// Package memory is an in-process invalidation bus: a Driver for tests,
// demos and single-process setups, with deterministic fault injection.
//
// A Bus is one broadcast channel. Each Conn from Bus.Connect is one node's
// link to it and implements invalidation.Driver: every payload published on
// any Conn reaches every subscription of every Conn on the bus (the engine
// suppresses a node's own messages). Each subscription has its own
// goroutine and unbounded queue, so a publisher never waits for a slow
// subscriber, and each subscriber sees all payloads in one order.
//
// Faults, applied when called:
//
//   - Disconnect: the subscriptions get HandleLinkDown, Publish fails with
//     ErrDisconnected, and payloads published meanwhile are lost to this
//     Conn. Payloads queued before the disconnect are still delivered.
//     Reconnect reports HandleLinkUp again.
//   - DropNext(n): the next n payloads for this Conn are silently lost (a
//     sequence gap).
//   - Stall/Unstall: pings go unanswered and incoming payloads are held,
//     as on a stuck link; Unstall delivers what was held, in order.
//   - FailPublish(n): the next n Publish calls fail with ErrInjected.
//   - FailReplay(n): the next n LogHead or Replay calls fail with
//     ErrInjected.
//
// The replay log: every Publish is appended to a bus-wide log, written
// under the same lock as the fan-out, so a payload is in the log if and
// only if it was published, in delivery order. Subscribers receive logged
// payloads through Handler.HandleLogMessage with their position (an epoch
// per log, ids "Ms-Seq" increasing like Redis stream ids), and each Conn
// implements invalidation.Replayer, so the engine catches up after a gap
// instead of clearing. Disconnect and DropNext lose payloads on the live
// path only; the log keeps them. Retention: entries older than
// BusConfig.ReplayWindow (default one minute) and past BusConfig.MaxLogEntries
// are trimmed when an entry is appended; a replay after a trimmed
// position, of another epoch or past the log's end fails with
// invalidation.ErrNoContinuity. For tests: Bus.TrimLog drops every entry
// (a node away longer than the window), Bus.Restart starts a new log with a
// new epoch (a restart without persistence), Conn.FailReplay(n) fails the
// next reads of the log, and DisableReplay (per Conn, or
// BusConfig.DisableReplay for all; DriverConfig "DisableReplay") turns the
// log off: publishes are not logged and a gap clears.
//
// Every subscription answers a ping each PingInterval (default
// DefaultPingInterval) with HandleAlive, queued behind the payloads already
// waiting, unless its Conn is stalled or disconnected.
//
// The driver is registered as Type "memory". DriverConfig {"Bus": "name"}
// selects the process-wide bus Named(name); without it, Named("default").
// {"DisableReplay": true} turns the replay log off for that link.
//
// Handlers must not close their own Subscription from inside a callback
// (Close waits for the callback to return).
package memory
