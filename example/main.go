package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/backend/option"
	"github.com/halilbulentorhon/invacache-go/config"

	// Import the Redis invalidation driver
	_ "github.com/halilbulentorhon/invacache-go/invalidation/drivers/redis"
)

func main() {
	addr := os.Getenv("INVACACHE_REDIS_ADDR")
	if addr == "" {
		addr = "localhost:6379"
	}
	flag.StringVar(&addr, "redis", addr, "Redis address (default from $INVACACHE_REDIS_ADDR, else localhost:6379)")
	channel := flag.String("channel", "invacache:invalidation", "Pub/Sub channel")
	flag.Parse()
	if err := run(addr, *channel, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "example:", err)
		os.Exit(1)
	}
}

// newCache is the README's configuration, with the address and channel
// from the command line.
func newCache(addr, channel string) (invacache.Cache[string], error) {
	cfg := config.InvaCacheConfig{
		BackendName: "in-memory",
		Backend: &config.BackendConfig{
			InMemory: &config.InMemoryConfig{
				Capacity: 10000,
			},
		},
		Invalidation: &config.InvalidationConfig{
			Type: "redis",
			DriverConfig: map[string]any{
				"Address":     addr,
				"Password":    "",
				"DB":          0,
				"Channel":     channel,
				"PoolSize":    10,
				"MaxRetries":  3,
				"DialTimeout": 5 * time.Second,
			},
		},
	}
	return invacache.NewCache[string](cfg)
}

func run(addr, channel string, w io.Writer) error {
	a, err := newCache(addr, channel)
	if err != nil {
		return err
	}
	defer a.Close() // Always cleanup resources
	// NewCache waits up to DialTimeout for the subscription; if Redis is not
	// there it still returns a cache that serves nothing until the link is up.
	if !a.Stats().Invalidation.LinkUp {
		return fmt.Errorf("cannot reach Redis at %s (set --redis or INVACACHE_REDIS_ADDR)", addr)
	}
	b, err := newCache(addr, channel)
	if err != nil {
		return err
	}
	defer b.Close()
	fmt.Fprintf(w, "two caches, A and B, share channel %q on Redis at %s\n", channel, addr)

	// A plain Set is local: each replica fills its own cache.
	if err := a.Set("user:1", "Alice"); err != nil {
		return err
	}
	if err := b.Set("user:1", "Alice"); err != nil {
		return err
	}
	show(w, "both cached user:1", a, b, "user:1")

	// A writes a new value and broadcasts: A keeps it, B drops its copy.
	start := time.Now()
	if err := a.Set("user:1", "Alice Smith", option.WithInvalidation()); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.Flush(ctx); err != nil {
		return fmt.Errorf("the broadcast did not leave within 5s (is Redis running at %s?): %w", addr, err)
	}
	if err := waitMiss(ctx, b, "user:1"); err != nil {
		return fmt.Errorf("B still holds user:1: %w", err)
	}
	fmt.Fprintf(w, "A.Set(user:1, \"Alice Smith\", WithInvalidation()): B dropped its copy within %v\n", time.Since(start).Round(time.Microsecond))
	show(w, "after the broadcast", a, b, "user:1")

	// B's next read goes to the source of truth.
	v, err := b.GetOrLoad("user:1", func(key string) (string, time.Duration, error) {
		fmt.Fprintf(w, "B loads %s from the database\n", key)
		return "Alice Smith", time.Minute, nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "B.GetOrLoad(user:1) = %q\n", v)

	// A delete with invalidation removes the key everywhere.
	if err := b.Delete("user:1", option.WithDeleteInvalidation()); err != nil {
		return err
	}
	if err := b.Flush(ctx); err != nil {
		return err
	}
	if err := waitMiss(ctx, a, "user:1"); err != nil {
		return fmt.Errorf("A still holds user:1: %w", err)
	}
	show(w, "after B.Delete(user:1, WithDeleteInvalidation())", a, b, "user:1")
	return nil
}

// waitMiss polls until c no longer holds key.
func waitMiss(ctx context.Context, c invacache.Cache[string], key string) error {
	for {
		if _, err := c.Get(key); errors.Is(err, invacache.ErrNotFound) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

func show(w io.Writer, when string, a, b invacache.Cache[string], key string) {
	get := func(c invacache.Cache[string]) string {
		v, err := c.Get(key)
		if err != nil {
			return "(miss)"
		}
		return fmt.Sprintf("%q", v)
	}
	fmt.Fprintf(w, "%-50s A: %-14s B: %s\n", when+":", get(a), get(b))
}
