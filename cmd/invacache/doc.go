// Command invacache is the operator's tool for InvaCache-Go.
//
//	invacache demo        several cache nodes over a simulated database, a
//	                      read/write workload, per-second report and a stale-read
//	                      check (embedded Redis-protocol server by default;
//	                      --metrics-addr serves their Prometheus metrics)
//	invacache invalidate  purge keys (or --clear) on every node, in the wire format
//	invacache monitor     decode the invalidation channel live
//	invacache bench       propagation latency and throughput against a Redis
//	invacache chaos       faults on a schedule against a Redis it starts, and a
//	                      stale-read checker
//	invacache --version   the module version from the build info
//
// demo, invalidate, monitor and bench take --config FILE (JSON or YAML,
// read by config.Parse as the library reads it) and the same Redis flags
// (--redis, --username, --password, --db, --channel, --dial-timeout,
// --sharded, --tls…); flags override the file. chaos starts its own Redis
// servers and takes neither. monitor, bench and chaos print JSON with --json.
// "invacache <command> --help" lists every flag. Errors are one line on
// stderr naming the flag or config key, with exit status 1 (2 for usage
// errors).
package main
