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
//
// Every subscription answers a ping each PingInterval (default
// DefaultPingInterval) with HandleAlive, queued behind the payloads already
// waiting, unless its Conn is stalled or disconnected.
//
// The driver is registered as Type "memory". DriverConfig {"Bus": "name"}
// selects the process-wide bus Named(name); without it, Named("default").
//
// Handlers must not close their own Subscription from inside a callback
// (Close waits for the callback to return).
package memory
