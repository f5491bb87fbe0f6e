package invacache_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/halilbulentorhon/invacache-go/internal/poll"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/backend/option"
	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
)

func newLocal[V any](t *testing.T, c config.InMemoryConfig) invacache.Cache[V] {
	t.Helper()
	cache, err := invacache.NewCache[V](config.InvaCacheConfig{Backend: mem(c)})
	if err != nil {
		t.Fatalf("NewCache: %v", err)
	}
	t.Cleanup(func() { cache.Close() })
	return cache
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, within, what, cond)
}

func TestGetSetDeleteClear(t *testing.T) {
	leakcheck.Check(t)
	c := newLocal[string](t, config.InMemoryConfig{})
	if _, err := c.Get("a"); !errors.Is(err, invacache.ErrNotFound) {
		t.Fatalf("Get on empty cache: err = %v, want ErrNotFound", err)
	}
	for _, k := range []string{"a", "b", ""} {
		if err := c.Set(k, "v-"+k); err != nil {
			t.Fatalf("Set(%q): %v", k, err)
		}
	}
	if got, err := c.Get("a"); err != nil || got != "v-a" {
		t.Errorf("Get(a) = %q, %v; want v-a, nil", got, err)
	}
	if got, err := c.Get(""); err != nil || got != "v-" {
		t.Errorf("Get(\"\") = %q, %v; want v-, nil", got, err)
	}
	if err := c.Delete("a"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get("a"); !errors.Is(err, invacache.ErrNotFound) {
		t.Errorf("Get after Delete: err = %v, want ErrNotFound", err)
	}
	if got := c.Len(); got != 2 {
		t.Errorf("Len = %d, want 2", got)
	}
	if err := c.Clear(); err != nil {
		t.Fatal(err)
	}
	if got := c.Len(); got != 0 {
		t.Errorf("Len after Clear = %d, want 0", got)
	}
	// Broadcast options on a local cache are accepted and change nothing else.
	if err := c.Set("x", "1", option.WithInvalidation()); err != nil {
		t.Errorf("Set with invalidation on a local cache: %v", err)
	}
	if err := c.Delete("x", option.WithDeleteInvalidation()); err != nil {
		t.Errorf("Delete with invalidation on a local cache: %v", err)
	}
	if err := c.Clear(option.WithClearInvalidation()); err != nil {
		t.Errorf("Clear with invalidation on a local cache: %v", err)
	}
}

// TestTTL: with a default TTL (otter's expiry) and without one (deadlines
// the store checks itself), entries expire as their writes said and no
// sooner.
func TestTTL(t *testing.T) {
	for _, ttl := range []string{"50ms", ""} {
		t.Run("Ttl="+ttl, func(t *testing.T) {
			leakcheck.Check(t)
			c := newLocal[int](t, config.InMemoryConfig{Ttl: ttl, SweeperInterval: 10 * time.Millisecond})
			if ttl == "" {
				c.Set("default", 1, option.WithTTL(50*time.Millisecond))
				c.Set("plain", 5) // no default TTL: never expires
			} else {
				c.Set("default", 1)
				c.Set("plain", 5, option.WithNoExpiration())
			}
			c.Set("short", 2, option.WithTTL(20*time.Millisecond))
			c.Set("forever", 3, option.WithNoExpiration())
			c.Set("long", 4, option.WithTTL(time.Hour))
			eventually(t, 2*time.Second, "entries with default and short TTL should expire", func() bool {
				_, e1 := c.Get("default")
				_, e2 := c.Get("short")
				return errors.Is(e1, invacache.ErrNotFound) && errors.Is(e2, invacache.ErrNotFound)
			})
			for k, want := range map[string]int{"forever": 3, "long": 4, "plain": 5} {
				if got, err := c.Get(k); err != nil || got != want {
					t.Errorf("Get(%s) = %d, %v; want %d, nil", k, got, err, want)
				}
			}
			if err := c.Set("bad", 5, option.WithTTL(-time.Second)); !errors.Is(err, invacache.ErrInvalidArgument) {
				t.Errorf("Set with negative TTL: err = %v, want ErrInvalidArgument", err)
			}
		})
	}
}

func TestGetOrLoadSingleFlight(t *testing.T) {
	leakcheck.Check(t)
	c := newLocal[string](t, config.InMemoryConfig{})
	var calls atomic.Int32
	release := make(chan struct{})
	loader := func(key string) (string, time.Duration, error) {
		calls.Add(1)
		<-release
		return "loaded-" + key, 0, nil
	}
	const waiters = 32
	var wg sync.WaitGroup
	results := make([]string, waiters)
	errs := make([]error, waiters)
	for i := range waiters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = c.GetOrLoad("k", loader)
		}()
	}
	eventually(t, 2*time.Second, "the loader should start", func() bool { return calls.Load() == 1 })
	close(release)
	wg.Wait()
	if got := calls.Load(); got != 1 {
		t.Errorf("loader calls = %d, want 1", got)
	}
	for i := range waiters {
		if results[i] != "loaded-k" || errs[i] != nil {
			t.Errorf("waiter %d got %q, %v; want loaded-k, nil", i, results[i], errs[i])
		}
	}
	if got, err := c.Get("k"); got != "loaded-k" || err != nil {
		t.Errorf("Get after load = %q, %v; want loaded-k, nil", got, err)
	}
	if st := c.Stats(); st.Loads != 1 {
		t.Errorf("Stats.Loads = %d, want 1", st.Loads)
	}
}

func TestGetOrLoadErrorsAreNotCached(t *testing.T) {
	leakcheck.Check(t)
	c := newLocal[int](t, config.InMemoryConfig{})
	boom := errors.New("db down")
	tests := []struct {
		name    string
		loader  invacache.LoaderFunc[int]
		wantErr error
	}{
		{"error", func(string) (int, time.Duration, error) { return 7, 0, boom }, boom},
		{"panic", func(string) (int, time.Duration, error) { panic("loader bug") }, invacache.ErrLoaderPanic},
		{"nil loader", nil, invacache.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.GetOrLoad(tt.name, tt.loader)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("GetOrLoad err = %v, want %v", err, tt.wantErr)
			}
			if _, err := c.Get(tt.name); !errors.Is(err, invacache.ErrNotFound) {
				t.Errorf("after a failed load, Get err = %v, want ErrNotFound (nothing cached)", err)
			}
		})
	}
	if st := c.Stats(); st.LoadErrors != 2 {
		t.Errorf("Stats.LoadErrors = %d, want 2", st.LoadErrors)
	}
}

func TestGetOrLoadPanicReachesEveryWaiter(t *testing.T) {
	leakcheck.Check(t)
	c := newLocal[int](t, config.InMemoryConfig{})
	release := make(chan struct{})
	// Every loader panics, so each caller must see ErrLoaderPanic whether it
	// joined the first flight or ran a loader of its own.
	loader := func(string) (int, time.Duration, error) {
		<-release
		panic("boom")
	}
	const callers = 8
	errs := make(chan error, callers)
	for range callers {
		go func() {
			_, err := c.GetOrLoad("p", loader)
			errs <- err
		}()
	}
	close(release)
	for range callers {
		if err := <-errs; !errors.Is(err, invacache.ErrLoaderPanic) {
			t.Errorf("caller err = %v, want ErrLoaderPanic", err)
		}
	}
	if _, err := c.Get("p"); !errors.Is(err, invacache.ErrNotFound) {
		t.Errorf("after a panicking load, Get err = %v, want ErrNotFound", err)
	}
}

func TestGetOrLoadTTLFromLoader(t *testing.T) {
	leakcheck.Check(t)
	c := newLocal[int](t, config.InMemoryConfig{SweeperInterval: 10 * time.Millisecond})
	c.GetOrLoad("short", func(string) (int, time.Duration, error) { return 1, 20 * time.Millisecond, nil })
	c.GetOrLoad("uncached", func(string) (int, time.Duration, error) { return 2, -1, nil })
	if _, err := c.Get("uncached"); !errors.Is(err, invacache.ErrNotFound) {
		t.Errorf("a loader ttl < 0 must not cache: Get err = %v, want ErrNotFound", err)
	}
	eventually(t, 2*time.Second, "the loader's TTL should expire the entry", func() bool {
		_, err := c.Get("short")
		return errors.Is(err, invacache.ErrNotFound)
	})
}

// TestLoadRacingLocalDelete: a Delete or a Clear while the loader runs means
// the loaded (possibly stale) value is returned but not cached (rule 5).
func TestLoadRacingLocalDelete(t *testing.T) {
	for name, race := range map[string]func(invacache.Cache[string]){
		"Delete": func(c invacache.Cache[string]) { c.Delete("k") },
		"Clear":  func(c invacache.Cache[string]) { c.Clear() },
	} {
		t.Run(name, func(t *testing.T) {
			leakcheck.Check(t)
			c := newLocal[string](t, config.InMemoryConfig{})
			inLoader := make(chan struct{})
			release := make(chan struct{})
			done := make(chan string)
			go func() {
				v, _ := c.GetOrLoad("k", func(string) (string, time.Duration, error) {
					close(inLoader)
					<-release
					return "old", 0, nil
				})
				done <- v
			}()
			<-inLoader
			race(c)
			close(release)
			if got := <-done; got != "old" {
				t.Errorf("GetOrLoad returned %q, want the loaded value old", got)
			}
			if v, err := c.Get("k"); !errors.Is(err, invacache.ErrNotFound) {
				t.Errorf("Get after a racing %s = %q, %v; want ErrNotFound (value must not be cached)", name, v, err)
			}
		})
	}
}

func TestGetOrLoadContext(t *testing.T) {
	leakcheck.Check(t)
	c := newLocal[int](t, config.InMemoryConfig{})
	release := make(chan struct{})
	started := make(chan struct{})
	go c.GetOrLoadContext(context.Background(), "k", func(context.Context, string) (int, time.Duration, error) {
		close(started)
		<-release
		return 1, 0, nil
	})
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err := c.GetOrLoadContext(ctx, "k", func(context.Context, string) (int, time.Duration, error) { return 2, 0, nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiter with an expired context: err = %v, want DeadlineExceeded", err)
	}
	close(release)
	eventually(t, 2*time.Second, "the first load should be cached", func() bool {
		v, err := c.Get("k")
		return err == nil && v == 1
	})
}

func TestClose(t *testing.T) {
	leakcheck.Check(t)
	c, err := invacache.NewCache[int](config.InvaCacheConfig{Backend: mem(config.InMemoryConfig{Ttl: "1m"})})
	if err != nil {
		t.Fatal(err)
	}
	c.Set("a", 1)
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v, want nil (idempotent)", err)
	}
	calls := map[string]error{}
	_, calls["Get"] = c.Get("a")
	_, calls["GetOrLoad"] = c.GetOrLoad("a", func(string) (int, time.Duration, error) { return 1, 0, nil })
	calls["Set"] = c.Set("a", 2)
	calls["Delete"] = c.Delete("a")
	calls["Clear"] = c.Clear()
	calls["Flush"] = c.Flush(context.Background())
	for name, err := range calls {
		if !errors.Is(err, invacache.ErrClosed) {
			t.Errorf("%s after Close: err = %v, want ErrClosed", name, err)
		}
	}
}

func TestCapacityIsAHardBound(t *testing.T) {
	leakcheck.Check(t)
	c := newLocal[int](t, config.InMemoryConfig{Capacity: 1000, ShardCount: 8})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20_000 {
				c.Set(fmt.Sprintf("g%d-%d", g, i), i)
			}
		}()
	}
	wg.Wait()
	if got := c.Len(); got > 1000 {
		t.Errorf("Len = %d, want <= Capacity 1000", got)
	}
	if st := c.Stats(); st.Evictions == 0 {
		t.Errorf("Stats.Evictions = 0 after 80k inserts into 1000 slots, want > 0")
	}
}
