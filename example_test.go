package invacache_test

import (
	"fmt"
	"time"

	"github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/backend/option"
	"github.com/halilbulentorhon/invacache-go/config"
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
