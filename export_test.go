package invacache

// FlightWaiters reports how many callers wait on the load of key that a new
// GetOrLoad would join (0 when none is registered), so tests can order a
// join before what they do next without sleeping.
func FlightWaiters[V any](c Cache[V], key string) int {
	cc := c.(*cache[V])
	fs := &cc.flights[cc.store.KeyHash(key)%flightShards]
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f, ok := fs.m[key]; ok {
		return f.waiters
	}
	return 0
}
