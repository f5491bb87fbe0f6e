// Package invalidation is the contract between the cache and a broadcast bus:
// the Driver interface, the Handler through which a driver reports messages
// and the state of its subscription, and the registry that maps
// InvalidationConfig.Type to a driver factory.
//
// A driver that keeps a replayable log of what it publishes (the Redis
// driver's stream, the memory bus) also implements Replayer and delivers
// logged payloads through Handler.HandleLogMessage with their LogPos, so a
// node that may have missed messages catches up instead of clearing.
//
// A driver moves opaque payloads; everything else (wire format, sequencing,
// outbox, gap detection, liveness) lives in package internal/engine, so
// that every driver gives the same guarantees.
package invalidation
