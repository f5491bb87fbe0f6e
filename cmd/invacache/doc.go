// Command invacache is the operator's tool for InvaCache-Go.
//
//	invacache demo        several cache nodes over a simulated database, a
//	                      read/write workload, per-second report and a stale-read
//	                      check (embedded Redis-protocol server by default)
//	invacache invalidate  purge keys (or --clear) on every node, in the wire format
//	invacache monitor     decode the invalidation channel live
//	invacache bench       propagation latency and throughput against a Redis
//
// Every command takes --config FILE (JSON or YAML config.InvaCacheConfig) and
// the Redis flags (--redis, --username, --password, --db, --channel, --tls…);
// "invacache <command> --help" lists them. Errors are one line on stderr and
// a non-zero exit status (2 for usage errors).
package main
