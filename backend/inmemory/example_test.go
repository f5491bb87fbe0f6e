package inmemory_test

import (
	"fmt"
	"time"

	"github.com/halilbulentorhon/invacache-go/backend/inmemory"
)

func Example() {
	s, err := inmemory.New[string](inmemory.Config{
		ShardCount:    16,
		Capacity:      10_000,
		DefaultTTL:    time.Minute,
		SweepInterval: time.Second,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()

	s.Set("user:1", "Ada", 0)           // expires after DefaultTTL
	s.Set("user:2", "Grace", -1)        // never expires
	s.Set("user:3", "Linus", time.Hour) // explicit TTL

	v, ok := s.Get("user:1")
	fmt.Println(v, ok)

	// SetIf stores only if the check, run under the shard's write lock, agrees.
	stored := s.SetIf("user:4", "Ken", 0, func() bool { return false })
	fmt.Println(stored, s.Len())

	s.Delete("user:2")
	fmt.Println(s.Len())
	// Output:
	// Ada true
	// false 3
	// 2
}

func ExampleNew_invalidConfig() {
	_, err := inmemory.New[int](inmemory.Config{ShardCount: 8, Capacity: 4, SweepInterval: time.Second})
	fmt.Println(err)
	// Output: inmemory: Capacity (4) is below ShardCount (8): invalid config
}
