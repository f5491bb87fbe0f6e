// Package simdb is the simulated database of the demo and chaos commands: a
// fixed set of keys, each with a version that every write increments. Writes
// to one key are serialized with the writer's cache update, so the order of
// versions matches the order of cache writes.
package simdb
