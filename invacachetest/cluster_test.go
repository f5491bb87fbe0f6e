package invacachetest_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/halilbulentorhon/invacache-go/internal/poll"
	"strings"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/backend/option"
	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
	"github.com/halilbulentorhon/invacache-go/invacachetest"
)

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, 5*time.Second, what, cond)
}

func missing(n *invacachetest.Node[string], key string) func() bool {
	return func() bool {
		_, err := n.Get(key)
		return errors.Is(err, invacache.ErrNotFound)
	}
}

func flush(t *testing.T, n *invacachetest.Node[string]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

func cluster(t *testing.T, n int, tune func(*config.InvalidationConfig)) *invacachetest.Cluster[string] {
	t.Helper()
	ic := &config.InvalidationConfig{MaxStaleness: 200 * time.Millisecond}
	if tune != nil {
		tune(ic)
	}
	return invacachetest.NewCluster[string](t, n, config.InvaCacheConfig{Invalidation: ic})
}

func TestClusterPropagates(t *testing.T) {
	leakcheck.Check(t)
	c := cluster(t, 3, nil)
	if got := c.Len(); got != 3 {
		t.Fatalf("Len = %d, want 3", got)
	}
	for _, n := range c.Nodes() {
		n.Set("k", "old")
	}
	c.Node(0).Set("k", "new", option.WithInvalidation())
	for i, n := range c.Nodes()[1:] {
		eventually(t, fmt.Sprintf("replica %d should drop k", i+1), missing(n, "k"))
	}
	if v, err := c.Node(0).Get("k"); err != nil || v != "new" {
		t.Errorf("writer Get = %q, %v; want new, nil", v, err)
	}
}

// Each fault loses an invalidation on its way to the reader; once the link
// recovers the reader must not serve the old value (it caught up from the
// bus's log or cleared) and serves again.
func TestClusterFaults(t *testing.T) {
	lose := func(t *testing.T, w *invacachetest.Node[string]) {
		w.Delete("k", option.WithDeleteInvalidation())
		flush(t, w)
	}
	tests := []struct {
		name  string
		fault func(t *testing.T, w, r *invacachetest.Node[string])
	}{
		{"drop reveals a gap", func(t *testing.T, w, r *invacachetest.Node[string]) {
			w.Set("first", "x", option.WithInvalidation()) // r learns w's sequence
			flush(t, w)
			eventually(t, "the reader should see the first message", func() bool {
				return r.Stats().Invalidation.MessagesApplied > 0
			})
			r.Drop(1)
			lose(t, w)
			w.Delete("next", option.WithDeleteInvalidation())
		}},
		{"disconnect and reconnect", func(t *testing.T, w, r *invacachetest.Node[string]) {
			r.Disconnect()
			lose(t, w)
			r.Reconnect()
		}},
		{"stall past MaxStaleness", func(t *testing.T, w, r *invacachetest.Node[string]) {
			r.Stall()
			lose(t, w)
			eventually(t, "a stalled replica should stop serving", func() bool {
				return !r.Stats().Invalidation.Serving
			})
			if _, err := r.Get("k"); !errors.Is(err, invacache.ErrNotFound) {
				t.Errorf("a replica past MaxStaleness served k: err = %v, want ErrNotFound", err)
			}
			r.Unstall()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakcheck.Check(t)
			c := cluster(t, 2, nil)
			w, r := c.Node(0), c.Node(1)
			r.Set("k", "old")
			tt.fault(t, w, r)
			if err := r.WaitServing(context.Background()); err != nil {
				t.Fatalf("WaitServing after the fault: %v", err)
			}
			// Serving and without k: a reader that never stopped serving
			// (a drop) still has its catch-up ahead when WaitServing
			// returns, and misses everything while it runs.
			eventually(t, "the reader should serve again without the invalidated k", func() bool {
				return r.Stats().Invalidation.Serving && missing(r, "k")()
			})
			// Serving can lapse for a moment on a loaded machine (a late
			// proof of life); the reader must serve new values again.
			eventually(t, "the reader should serve a value set after the fault", func() bool {
				r.Set("after", "v")
				v, err := r.Get("after")
				return err == nil && v == "v"
			})
		})
	}
}

func TestClusterFailPublishIsRetried(t *testing.T) {
	leakcheck.Check(t)
	c := cluster(t, 2, nil)
	w, r := c.Node(0), c.Node(1)
	r.Set("k", "old")
	w.FailPublish(2)
	w.Delete("k", option.WithDeleteInvalidation())
	flush(t, w)
	eventually(t, "the retried invalidation should reach the reader", missing(r, "k"))
	if got := w.Stats().Invalidation.PublishFailures; got != 2 {
		t.Errorf("PublishFailures = %d, want 2", got)
	}
}

func TestStartClusterRejectsNoReplicas(t *testing.T) {
	if _, err := invacachetest.StartCluster[int](0, config.InvaCacheConfig{}); !errors.Is(err, invacache.ErrInvalidArgument) {
		t.Errorf("StartCluster(0) err = %v, want ErrInvalidArgument", err)
	}
}

// The checker must catch a read path that breaks the bound: a replica that
// neither clears on a gap nor bounds its staleness keeps a dropped write's
// old value forever.
func TestCheckerCatchesAStaleReadPath(t *testing.T) {
	leakcheck.Check(t)
	c := cluster(t, 2, func(ic *config.InvalidationConfig) {
		ic.GapStrategy = config.GapNone
		ic.DisableMaxStaleness = true
	})
	w, r := c.Node(0), c.Node(1)
	chk := invacachetest.NewChecker(invacachetest.Bound{MaxStaleness: 10 * time.Millisecond})
	r.Set("k", "1")
	r.Drop(1)
	w.Set("k", "2", option.WithInvalidation())
	flush(t, w)
	chk.Ack("k", 2)
	eventually(t, "the checker should judge the replica's old value stale", func() bool {
		start := time.Now()
		v, err := r.Get("k")
		if err != nil {
			t.Fatalf("Get: %v (the replica should keep its stale value)", err)
		}
		version := uint64(v[0] - '0')
		return chk.Read("k", version, start)
	})
	ft := &fakeT{}
	chk.Verify(ft)
	if !strings.Contains(ft.msg, "stale beyond the bound") || !strings.Contains(ft.msg, `key "k"`) {
		t.Errorf("Verify reported %q, want the stale count and the first stale read", ft.msg)
	}
}

// fakeT records what Verify reports.
type fakeT struct {
	testing.TB
	msg string
}

func (f *fakeT) Helper()                        {}
func (f *fakeT) Errorf(format string, a ...any) { f.msg = fmt.Sprintf(format, a...) }
