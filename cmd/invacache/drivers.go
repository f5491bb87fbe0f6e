package main

// The cache nodes of demo and bench open their drivers by type through the
// registry, so the Redis driver registers itself here.
import _ "github.com/halilbulentorhon/invacache-go/invalidation/drivers/redis"
