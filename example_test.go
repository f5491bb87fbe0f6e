package invacache_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/backend/option"
	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/invalidation/drivers/memory"
)

func ExampleNewCache() {
	cfg := config.InvaCacheConfig{
		BackendName: "in-memory",
		Backend: &config.BackendConfig{
			InMemory: &config.InMemoryConfig{
				ShardCount: 16,
				Capacity:   10000,
				Ttl:        "10m",
			},
		},
	}
	cache, err := invacache.NewCache[string](cfg)
	if err != nil {
		panic(err)
	}
	defer cache.Close()

	cache.Set("user:123", "John Doe", option.WithTTL(5*time.Minute))
	v, err := cache.Get("user:123")
	fmt.Println(v, err)

	user, err := cache.GetOrLoad("user:456", func(key string) (string, time.Duration, error) {
		return "Jane Doe", 10 * time.Minute, nil // e.g. a database lookup
	})
	fmt.Println(user, err)
	// Output:
	// John Doe <nil>
	// Jane Doe <nil>
}

// Two replicas on one bus: a write with invalidation keeps the writer's new
// value and drops the peer's stale copy. The in-process bus stands in for
// Redis here; with the Redis driver only the Invalidation config changes.
func Example_invalidation() {
	bus := memory.NewBus()
	defer bus.Close()
	replica := func() invacache.Cache[string] {
		conn := bus.Connect()
		c, err := invacache.NewCache[string](config.InvaCacheConfig{
			Invalidation: &config.InvalidationConfig{Driver: conn},
		})
		if err != nil {
			panic(err)
		}
		return c
	}
	a, b := replica(), replica()
	defer a.Close()
	defer b.Close()

	a.Set("user:1", "Ada")
	b.Set("user:1", "Ada")
	a.Set("user:1", "Ada Lovelace", option.WithInvalidation())
	a.Flush(context.Background()) // the broadcast has left a

	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if _, err := b.Get("user:1"); errors.Is(err, invacache.ErrNotFound) {
			break
		}
	}
	va, _ := a.Get("user:1")
	_, errB := b.Get("user:1")
	fmt.Println("a:", va)
	fmt.Println("b:", errB)
	// Output:
	// a: Ada Lovelace
	// b: invacache: key not found
}
