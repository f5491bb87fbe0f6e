// Package invalidation is the contract between the cache and a broadcast bus:
// the Driver interface, the Handler through which a driver reports messages
// and the state of its subscription, and the registry that maps
// InvalidationConfig.Type to a driver factory.
//
// A driver moves opaque payloads; everything else (wire format, sequencing,
// outbox, gap detection, liveness) lives in package internal/engine, so
// that every driver gives the same guarantees.
package invalidation
