// Package bench holds InvaCache's benchmarks, in their own module so that
// the root module keeps no dependencies. store_* files compare the
// in-memory store with otter v2, ristretto v2 and a sharded mutex LRU;
// propagation_* files measure invalidation over Redis.
package bench
