// Package invalidation is the contract between the cache and a broadcast bus:
// the Driver interface, the Handler through which a driver reports messages
// and the state of its subscription, and the registry that maps
// InvalidationConfig.Type to a driver factory.
//
// A driver moves opaque payloads; everything else (wire format, sequencing,
// outbox, gap detection, liveness) lives in the cache's invalidation engine,
// so that every driver gives the same guarantees.
//
// # Writing a driver
//
//  1. Implement Driver. Publish sends a batch of payloads in order and
//     returns once the bus accepted them (the engine retries a failed batch
//     with backoff: do not retry forever yourself) and promptly when ctx
//     ends. Subscribe attaches a Handler and returns at once; the link comes
//     up in the background.
//  2. Report the subscription truthfully, from one goroutine per
//     subscription: HandleLinkUp at every (re)subscription (the engine treats
//     each one as a possible loss of messages), HandleLinkDown when it is
//     lost, and a proof of life at least every SubscribeOptions.PingInterval
//     (HandleAliveAt with the send time of a round trip through the
//     subscription, or HandleAlive when the proof has no earlier start). A
//     node serves cached values only while such a proof is younger than its
//     MaxStaleness, so a driver that cannot prove liveness makes caches that
//     never serve.
//  3. Never drop a message silently: a payload you received goes to
//     HandleMessage; one you could not deliver must show up as a link loss
//     (HandleLinkDown, then HandleLinkUp), which the engine handles as a gap.
//  4. Optionally keep a log of what you publish and implement Replayer
//     (deliver logged payloads through HandleLogMessage with their LogPos):
//     nodes then catch up after a gap instead of clearing their caches.
//     Implement ConnectTimeouter if NewCache should wait for your first
//     link-up longer or shorter than 5s.
//  5. Register a Factory under a name in an init function (MustRegister), so
//     a blank import selects the driver by InvalidationConfig.Type. Reject
//     unknown keys and wrong types in Spec.Options, naming the key and
//     wrapping config.ErrInvalidConfig.
//
// The memory driver (invalidation/drivers/memory) is a complete small
// example; package invacachetest runs caches over it with injected faults.
package invalidation
