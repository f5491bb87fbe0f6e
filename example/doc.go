// Command example is the Redis driver README's usage as a runnable program:
// two caches (two "replicas" in one process) share a Redis channel, and a
// Set with invalidation on one drops the key on the other.
//
//	go run . [--redis host:port]     (or INVACACHE_REDIS_ADDR; default localhost:6379)
package main
