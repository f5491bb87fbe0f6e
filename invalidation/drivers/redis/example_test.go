package redis_test

import (
	"context"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/backend/option"
	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/redisserver"
	"github.com/halilbulentorhon/invacache-go/invalidation/drivers/redis"
)

// The seed README's usage: a blank import registers the driver and the
// DriverConfig map configures it. (Needs a Redis on localhost:6379.)
func Example() {
	cfg := config.InvaCacheConfig{
		BackendName: "in-memory",
		Backend: &config.BackendConfig{
			InMemory: &config.InMemoryConfig{
				ShardCount: 16,
				Capacity:   10000,
			},
		},
		Invalidation: &config.InvalidationConfig{
			Type: "redis",
			DriverConfig: map[string]any{
				"Address":     "localhost:6379",
				"Password":    "",
				"DB":          0,
				"Channel":     "invacache:invalidation",
				"PoolSize":    10,
				"MaxRetries":  3,
				"DialTimeout": 5 * time.Second,
			},
		},
	}

	cache, err := invacache.NewCache[string](cfg)
	if err != nil {
		panic(err)
	}
	defer cache.Close()

	// Every replica drops user:1 from its local cache.
	_ = cache.Set("user:1", "alice", option.WithInvalidation())
}

// The typed form of the settings. (Needs a Redis on localhost:6379.)
func Example_typed() {
	cache, err := invacache.NewCache[string](config.InvaCacheConfig{
		Invalidation: &config.InvalidationConfig{
			Type: "redis",
			Redis: &config.RedisInvalidationConfig{
				Address:     "localhost:6379",
				Channel:     "myapp:cache:invalidation",
				DialTimeout: 2 * time.Second,
			},
			MaxStaleness: 3 * time.Second,
		},
	})
	if err != nil {
		panic(err)
	}
	defer cache.Close()
}

// Two replicas of a service, here two caches in one process, on a Redis the
// example starts itself.
func Example_propagation() {
	srv, err := redisserver.Start(redisserver.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()

	newNode := func() invacache.Cache[string] {
		c, err := invacache.NewCache[string](config.InvaCacheConfig{
			Invalidation: &config.InvalidationConfig{
				Type:         "redis",
				DriverConfig: map[string]any{"Address": srv.Addr(), "Channel": "example"},
			},
		})
		if err != nil {
			panic(err)
		}
		return c
	}
	a, b := newNode(), newNode()
	defer a.Close()
	defer b.Close()

	_ = a.Set("user:1", "alice")
	_ = b.Set("user:1", "alice")
	_ = a.Set("user:1", "alice v2", option.WithInvalidation())

	// b drops its copy as soon as the message arrives.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if _, err := b.Get("user:1"); err != nil {
			break
		}
	}
	va, _ := a.Get("user:1")
	_, errB := b.Get("user:1")
	fmt.Println("a:", va)
	fmt.Println("b:", errB)
	// Output:
	// a: alice v2
	// b: invacache: key not found
}

// A driver value shared by several caches: one publish pool and one
// subscription connection between them. Its owner closes it after them.
func ExampleNew() {
	drv, err := redis.New(redis.Config{Address: "localhost:6379", Channel: "orders"})
	if err != nil {
		panic(err)
	}
	defer drv.Close()

	inv := &config.InvalidationConfig{Driver: drv}
	users, _ := invacache.NewCache[string](config.InvaCacheConfig{Invalidation: inv})
	defer users.Close()
	counts, _ := invacache.NewCache[int](config.InvaCacheConfig{Invalidation: inv})
	defer counts.Close()
}

// Reusing an application's go-redis client; the driver does not close it.
func ExampleConfig_client() {
	client := goredis.NewClient(&goredis.Options{Addr: "localhost:6379", Protocol: 2})
	defer client.Close()

	drv, err := redis.New(redis.Config{Channel: "orders", Client: client})
	if err != nil {
		panic(err)
	}
	defer drv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = drv.Publish(ctx, [][]byte{[]byte("user:1")}) // what `redis-cli publish orders user:1` does
}

// A service that writes to the database but holds no cache invalidates every
// replica's copy with a Publisher (here against a Redis the example starts).
func ExampleNewPublisher() {
	srv, err := redisserver.Start(redisserver.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()

	// A replica of the service that caches users.
	replica, err := invacache.NewCache[string](config.InvaCacheConfig{
		Invalidation: &config.InvalidationConfig{
			Type:  "redis",
			Redis: &config.RedisInvalidationConfig{Address: srv.Addr(), Channel: "users"},
		},
	})
	if err != nil {
		panic(err)
	}
	defer replica.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = replica.WaitServing(ctx)
	_ = replica.Set("user:1", "alice")

	// The writer: after updating user:1 in the database.
	pub, err := redis.NewPublisher(redis.Config{Address: srv.Addr(), Channel: "users"})
	if err != nil {
		panic(err)
	}
	defer pub.Close()
	if err := pub.Invalidate(ctx, "user:1"); err != nil { // returns once published
		panic(err)
	}

	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if _, err := replica.Get("user:1"); err != nil {
			break
		}
	}
	_, err = replica.Get("user:1")
	fmt.Println("replica:", err)
	// Output:
	// replica: invacache: key not found
}
