package invacache_test

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/backend/option"
	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
	"github.com/halilbulentorhon/invacache-go/invalidation/drivers/memory"
)

// joined polls until n callers wait on the load of key.
func joined[V any](t *testing.T, c invacache.Cache[V], key string, n int) {
	t.Helper()
	eventually(t, 5*time.Second, "callers should join the load", func() bool {
		return invacache.FlightWaiters(c, key) == n
	})
}

// failAfter is a context for a call that must return on its own: on a
// regression it ends the call (and so the test) instead of hanging it.
func failAfter(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// A GetOrLoad that starts after Delete(k), Clear, a peer's invalidation or
// a gap returned must not join a load of k that started before it (and so
// may have read the source before the write): issue 10 item 3.
func TestGetOrLoadAfterInvalidationDoesNotJoinOlderLoad(t *testing.T) {
	tests := []struct {
		name       string
		tune       func(*config.InvalidationConfig)
		invalidate func(t *testing.T, nodes []node)
	}{
		{"local Delete", nil, func(t *testing.T, nodes []node) { nodes[1].Delete("k") }},
		{"local Clear", nil, func(t *testing.T, nodes []node) { nodes[1].Clear() }},
		{"peer Delete", nil, func(t *testing.T, nodes []node) {
			before := nodes[1].Stats().Invalidation.MessagesApplied
			nodes[0].Delete("k", option.WithDeleteInvalidation())
			eventually(t, 5*time.Second, "node 1 should apply the Delete", func() bool {
				return nodes[1].Stats().Invalidation.MessagesApplied > before
			})
		}},
		{"peer Clear", nil, func(t *testing.T, nodes []node) {
			before := nodes[1].Stats().Invalidation.MessagesApplied
			nodes[0].Clear(option.WithClearInvalidation())
			eventually(t, 5*time.Second, "node 1 should apply the Clear", func() bool {
				return nodes[1].Stats().Invalidation.MessagesApplied > before
			})
		}},
		{"peer Delete caught up from the log", nil, func(t *testing.T, nodes []node) {
			nodes[0].Delete("first", option.WithDeleteInvalidation()) // node 1 learns node 0's sequence
			flush(t, nodes[0].Cache)
			eventually(t, 5*time.Second, "node 1 should apply the first message", func() bool {
				return nodes[1].Stats().Invalidation.MessagesApplied > 0
			})
			before := nodes[1].Stats().Invalidation.CatchUps
			nodes[1].conn.DropNext(1)
			nodes[0].Delete("k", option.WithDeleteInvalidation()) // lost on the way...
			flush(t, nodes[0].Cache)
			nodes[0].Delete("next", option.WithDeleteInvalidation()) // ...and replayed after this one
			eventually(t, 5*time.Second, "node 1 should catch up from the log", func() bool {
				return nodes[1].Stats().Invalidation.CatchUps > before
			})
		}},
		// Without a log to catch up from, a resubscribe clears.
		{"gap clear", func(ic *config.InvalidationConfig) { ic.Driver.(*memory.Conn).DisableReplay() }, func(t *testing.T, nodes []node) {
			before := nodes[1].Stats().Invalidation.ClearsOnGap
			nodes[1].conn.FailReplay(1) // no catch-up from the bus's log: clear
			nodes[1].conn.Disconnect()
			nodes[1].conn.Reconnect()
			eventually(t, 5*time.Second, "the resubscribe should clear node 1", func() bool {
				return nodes[1].Stats().Invalidation.ClearsOnGap > before
			})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakcheck.Check(t)
			nodes := newNodes(t, 2, tt.tune)
			c := nodes[1]
			release := make(chan struct{})
			old := make(chan string, 1)
			go func() {
				v, _ := c.GetOrLoad("k", func(string) (string, time.Duration, error) {
					<-release
					return "old", 0, nil
				})
				old <- v
			}()
			joined(t, c.Cache, "k", 1)
			tt.invalidate(t, nodes)

			got, err := c.GetOrLoadContext(failAfter(t), "k", func(context.Context, string) (string, time.Duration, error) {
				return "new", 0, nil
			})
			close(release)
			if err != nil || got != "new" {
				t.Errorf("GetOrLoad after the invalidation = %q, %v; want new, nil (a load of its own, not the older one)", got, err)
			}
			if v := <-old; v != "old" {
				t.Errorf("the older load returned %q to its caller, want old", v)
			}
			if v, err := c.Get("k"); err != nil || v != "new" {
				t.Errorf("Get after both loads = %q, %v; want new, nil (the older load must not be cached)", v, err)
			}
		})
	}
}

// A loader that ends its goroutine (runtime.Goexit, as t.FailNow does) must
// not leave its flight registered; its waiters get an error: issue 10 item 7.
func TestGetOrLoadLoaderGoexit(t *testing.T) {
	leakcheck.Check(t)
	c := newLocal[string](t, config.InMemoryConfig{})
	release := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		c.GetOrLoad("k", func(string) (string, time.Duration, error) {
			<-release
			runtime.Goexit()
			return "unreachable", 0, nil
		})
		t.Error("GetOrLoad returned in the goroutine its loader ended")
	}()
	joined(t, c, "k", 1)
	waiter := make(chan error, 1)
	go func() {
		_, err := c.GetOrLoadContext(failAfter(t), "k", func(context.Context, string) (string, time.Duration, error) {
			return "", 0, errors.New("the waiter should have joined the first load")
		})
		waiter <- err
	}()
	joined(t, c, "k", 2)
	close(release)
	<-exited
	if err := <-waiter; !errors.Is(err, invacache.ErrLoaderPanic) {
		t.Errorf("waiter of a loader that called Goexit: err = %v, want ErrLoaderPanic", err)
	}
	got, err := c.GetOrLoadContext(failAfter(t), "k", func(context.Context, string) (string, time.Duration, error) {
		return "v", 0, nil
	})
	if err != nil || got != "v" {
		t.Errorf("GetOrLoad after a loader's Goexit = %q, %v; want v, nil (a fresh load)", got, err)
	}
}

// A loader started by a caller that can cancel runs on a goroutine of its
// own; its Goexit reaches that caller as an error.
func TestGetOrLoadContextLoaderGoexit(t *testing.T) {
	leakcheck.Check(t)
	c := newLocal[string](t, config.InMemoryConfig{})
	_, err := c.GetOrLoadContext(failAfter(t), "k", func(context.Context, string) (string, time.Duration, error) {
		runtime.Goexit()
		return "unreachable", 0, nil
	})
	if !errors.Is(err, invacache.ErrLoaderPanic) {
		t.Errorf("err = %v, want ErrLoaderPanic", err)
	}
	if st := c.Stats(); st.Loads != 1 || st.LoadErrors != 1 {
		t.Errorf("Loads, LoadErrors = %d, %d; want 1, 1", st.Loads, st.LoadErrors)
	}
}

// One GetOrLoad that loads is one lookup: issue 10 item 9.
func TestGetOrLoadCountsOneMiss(t *testing.T) {
	leakcheck.Check(t)
	c := newLocal[int](t, config.InMemoryConfig{})
	loader := func(string) (int, time.Duration, error) { return 1, 0, nil }
	steps := []struct {
		name                string
		hits, misses, loads uint64
	}{
		{"first GetOrLoad loads", 0, 1, 1},
		{"second GetOrLoad hits", 1, 1, 1},
	}
	for _, s := range steps {
		if _, err := c.GetOrLoad("k", loader); err != nil {
			t.Fatal(err)
		}
		st := c.Stats()
		if st.Hits != s.hits || st.Misses != s.misses || st.Loads != s.loads {
			t.Errorf("%s: Hits, Misses, Loads = %d, %d, %d; want %d, %d, %d",
				s.name, st.Hits, st.Misses, st.Loads, s.hits, s.misses, s.loads)
		}
	}
}

// ctxKey carries a value from the first caller to the loader.
type ctxKey struct{}

// blockingLoader returns a loader that reports its context on started and
// then returns "v" when release closes or ctx.Err() when its context ends.
func blockingLoader(started chan<- context.Context, release <-chan struct{}) invacache.ContextLoaderFunc[string] {
	return func(ctx context.Context, _ string) (string, time.Duration, error) {
		started <- ctx
		select {
		case <-release:
			return "v", 0, nil
		case <-ctx.Done():
			return "", 0, ctx.Err()
		}
	}
}

// The caller that started a shared load cancels: it returns ctx.Err() at
// once, the others keep waiting and get the value, which is cached; the
// loader saw the first caller's context values (issue 14).
func TestSharedLoadOutlivesTheFirstCaller(t *testing.T) {
	leakcheck.Check(t)
	c := newLocal[string](t, config.InMemoryConfig{})
	started := make(chan context.Context, 1)
	release := make(chan struct{})
	loader := blockingLoader(started, release)

	firstCtx, cancelFirst := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "first"))
	defer cancelFirst()
	first := make(chan error, 1)
	go func() {
		_, err := c.GetOrLoadContext(firstCtx, "k", loader)
		first <- err
	}()
	loadCtx := <-started
	if got := loadCtx.Value(ctxKey{}); got != "first" {
		t.Errorf("loader's ctx.Value = %v, want the first caller's value first", got)
	}
	other := make(chan string, 1)
	go func() {
		v, err := c.GetOrLoadContext(failAfter(t), "k", loader)
		if err != nil {
			t.Errorf("the other waiter: err = %v, want nil", err)
		}
		other <- v
	}()
	joined(t, c, "k", 2)
	cancelFirst()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Errorf("the first caller after its cancel: err = %v, want context.Canceled", err)
	}
	if err := loadCtx.Err(); err != nil {
		t.Errorf("the load's context ended with the first caller (%v) while another waits", err)
	}
	close(release)
	if v := <-other; v != "v" {
		t.Errorf("the other waiter got %q, want v", v)
	}
	if v, err := c.Get("k"); err != nil || v != "v" {
		t.Errorf("Get = %q, %v; want v, nil (the shared load is cached)", v, err)
	}
}

// Every waiter leaves: the load's context is cancelled, nothing is cached
// even if the loader returns a value, and a later caller loads afresh.
func TestSharedLoadAbandonedByEveryWaiter(t *testing.T) {
	leakcheck.Check(t)
	c := newLocal[string](t, config.InMemoryConfig{})
	started := make(chan context.Context, 1)
	returned := make(chan struct{})
	loader := func(ctx context.Context, _ string) (string, time.Duration, error) {
		defer close(returned)
		started <- ctx
		<-ctx.Done()
		return "late", 0, nil // ignores the cancellation: must still not be cached
	}
	const callers = 3
	cancels := make([]context.CancelFunc, callers)
	errs := make(chan error, callers)
	for i := range callers {
		ctx, cancel := context.WithCancel(context.Background())
		cancels[i] = cancel
		go func() {
			_, err := c.GetOrLoadContext(ctx, "k", loader)
			errs <- err
		}()
		if i == 0 {
			<-started
		}
		joined(t, c, "k", i+1)
	}
	for i, cancel := range cancels {
		cancel()
		if err := <-errs; !errors.Is(err, context.Canceled) {
			t.Errorf("caller %d after its cancel: err = %v, want context.Canceled", i, err)
		}
	}
	<-returned // the load's context ended with its last waiter
	if v, err := c.Get("k"); !errors.Is(err, invacache.ErrNotFound) {
		t.Errorf("Get after an abandoned load = %q, %v; want ErrNotFound (nothing cached)", v, err)
	}
	got, err := c.GetOrLoadContext(failAfter(t), "k", func(context.Context, string) (string, time.Duration, error) {
		return "fresh", 0, nil
	})
	if err != nil || got != "fresh" {
		t.Errorf("GetOrLoad after an abandoned load = %q, %v; want fresh, nil", got, err)
	}
}

// A waiter without a deadline keeps the load alive when the caller that
// started it leaves.
func TestSharedLoadKeptByAPlainGetOrLoad(t *testing.T) {
	leakcheck.Check(t)
	c := newLocal[string](t, config.InMemoryConfig{})
	started := make(chan context.Context, 1)
	release := make(chan struct{})
	loader := blockingLoader(started, release)
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := c.GetOrLoadContext(ctx, "k", loader)
		first <- err
	}()
	<-started
	plain := make(chan string, 1)
	go func() {
		v, _ := c.GetOrLoad("k", func(string) (string, time.Duration, error) { return "own", 0, nil })
		plain <- v
	}()
	joined(t, c, "k", 2)
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Errorf("first caller: err = %v, want context.Canceled", err)
	}
	close(release)
	if v := <-plain; v != "v" {
		t.Errorf("GetOrLoad joined to the load got %q, want v", v)
	}
}

// A caller whose context already ended does not start a load.
func TestGetOrLoadContextAlreadyDone(t *testing.T) {
	leakcheck.Check(t)
	c := newLocal[string](t, config.InMemoryConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.GetOrLoadContext(ctx, "k", func(context.Context, string) (string, time.Duration, error) {
		t.Error("the loader ran for a caller whose context had ended")
		return "v", 0, nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}
