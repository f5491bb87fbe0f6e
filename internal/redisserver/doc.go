// Package redisserver starts real redis-server processes for tests and for
// the `invacache chaos` command: a standalone server (optionally with a
// password, ACL users or TLS), a Redis Cluster, or a Sentinel setup, each on
// free loopback ports with a throwaway temp directory.
//
// Every process binds 127.0.0.1 only, runs without persistence, and is
// killed by Close, which also removes its temp directory. The API returns
// errors and does not depend on package testing; StartT, StartClusterT and
// StartSentinelT are thin wrappers for tests that fail the test and register
// Close with t.Cleanup.
//
// redis-server and redis-cli must be on PATH; when they are missing, every
// constructor returns an error wrapping ErrNotInstalled that says how to
// install them (`apt-get install -y redis-server`).
//
// Faults: Server.Kill (SIGKILL), Stop (graceful), Restart (same port and
// config), Pause/Resume (SIGSTOP/SIGCONT, a hung server). Network faults
// (cut, blackhole) are in package faultproxy.
//
// Cluster: StartCluster creates the cluster with `redis-cli --cluster
// create` (cluster-node-timeout 1s, so failover takes ~2-3s); MasterForKey,
// MasterForSlot and KeySlot locate a key's owner, WaitState and WaitFailover
// wait for convergence. Sentinel: StartSentinel starts a master, replicas
// and sentinels (down-after 1s, failover-timeout 3s), seeded so they are
// ready at once; Master, KillMaster and WaitFailover drive a failover.
//
// Server.Do is a minimal RESP client (one connection per call) for test
// plumbing such as CONFIG SET or CLIENT KILL; it is not a Redis driver.
package redisserver
