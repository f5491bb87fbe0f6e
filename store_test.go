package invacache_test

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/backend/option"
	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
)

// TestStatsCountAGetOrLoadMissOnce: a GetOrLoad that loads is one miss, and
// the Get that finds its value one hit.
func TestStatsCountAGetOrLoadMissOnce(t *testing.T) {
	leakcheck.Check(t)
	c := newLocal[int](t, config.InMemoryConfig{})
	if _, err := c.GetOrLoad("k", func(string) (int, time.Duration, error) { return 1, 0, nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get("k"); err != nil {
		t.Fatal(err)
	}
	st := c.Stats()
	if st.Misses != 1 || st.Hits != 1 || st.Loads != 1 {
		t.Errorf("Stats misses/hits/loads = %d/%d/%d, want 1/1/1", st.Misses, st.Hits, st.Loads)
	}
}

// ShardCount and SweeperInterval are validated but change nothing: the store
// is otter, one policy over Capacity (a sharded store with one slot per
// shard would lose keys to collisions), and expired entries leave at otter's
// maintenance, not at a sweep an hour away. Their docs say so.
func TestShardCountAndSweeperIntervalHaveNoEffect(t *testing.T) {
	leakcheck.Check(t)
	const n = 64
	c := newLocal[int](t, config.InMemoryConfig{Capacity: n, ShardCount: n, SweeperInterval: time.Hour, Ttl: "1h"})
	for i := range n {
		c.Set(strconv.Itoa(i), i)
	}
	for i := range n {
		if v, err := c.Get(strconv.Itoa(i)); err != nil || v != i {
			t.Fatalf("Get(%d) = %d, %v with Capacity = ShardCount = %d; want %d, nil (all %d keys fit)", i, v, err, n, i, n)
		}
	}
	for i := range n {
		c.Set(strconv.Itoa(i), i, option.WithTTL(time.Millisecond))
	}
	// otter's timer wheel turns about once a second; Len runs maintenance.
	eventually(t, 5*time.Second, "expired entries should leave without the hour-long SweeperInterval", func() bool { return c.Len() == 0 })
	if got := c.Stats().Expirations; got != n {
		t.Errorf("Stats.Expirations = %d, want %d", got, n)
	}

	// The field docs say "no effect" and mark the field deprecated.
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, filepath.Join("config", "config.go"), nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{}
	ast.Inspect(f, func(nd ast.Node) bool {
		if ts, ok := nd.(*ast.TypeSpec); ok && ts.Name.Name == "InMemoryConfig" {
			for _, fld := range ts.Type.(*ast.StructType).Fields.List {
				docs[fld.Names[0].Name] = fld.Doc.Text()
			}
		}
		return true
	})
	for _, field := range []string{"ShardCount", "SweeperInterval"} {
		if !strings.HasPrefix(docs[field], field+" has no effect") {
			t.Errorf("config.InMemoryConfig.%s doc = %q; want it to start %q", field, docs[field], field+" has no effect")
		}
		if !strings.Contains(docs[field], "Deprecated: ") {
			t.Errorf("config.InMemoryConfig.%s doc lacks a Deprecated: paragraph", field)
		}
	}
}

// A loader's error or panic reaches every caller that joined its flight,
// the loader runs once, and nothing is cached.
func TestGetOrLoadFailureReachesEveryWaiter(t *testing.T) {
	boom := errors.New("db down")
	for _, tc := range []struct {
		name    string
		fail    func() (int, time.Duration, error)
		wantErr error
	}{
		{"error", func() (int, time.Duration, error) { return 7, 0, boom }, boom},
		{"panic", func() (int, time.Duration, error) { panic("loader bug") }, invacache.ErrLoaderPanic},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakcheck.Check(t)
			c := newLocal[int](t, config.InMemoryConfig{})
			var calls atomic.Int32
			release := make(chan struct{})
			loader := func(string) (int, time.Duration, error) {
				calls.Add(1)
				<-release
				return tc.fail()
			}
			const callers = 8
			errs := make(chan error, callers)
			for range callers {
				go func() {
					_, err := c.GetOrLoad("k", loader)
					errs <- err
				}()
			}
			joined(t, c, "k", callers)
			close(release)
			for range callers {
				if err := <-errs; !errors.Is(err, tc.wantErr) {
					t.Errorf("caller err = %v, want %v", err, tc.wantErr)
				}
			}
			if got := calls.Load(); got != 1 {
				t.Errorf("loader calls = %d, want 1 (one flight)", got)
			}
			if v, err := c.Get("k"); !errors.Is(err, invacache.ErrNotFound) {
				t.Errorf("Get after the failed load = %d, %v; want ErrNotFound (nothing cached)", v, err)
			}
			if st := c.Stats(); st.Loads != 1 || st.LoadErrors != 1 {
				t.Errorf("Stats loads/loadErrors = %d/%d, want 1/1", st.Loads, st.LoadErrors)
			}
		})
	}
}

// Clear racing Sets and loads: after Clear returns, nothing is served that a
// Set finished, or a loader started, before the Clear began.
func TestClearRacingSetsAndLoadsServesNothingOlder(t *testing.T) {
	leakcheck.Check(t)
	const keys, rounds = 32, 200
	c := newLocal[int64](t, config.InMemoryConfig{Capacity: 10_000})
	var next atomic.Int64    // values, increasing
	var setDone atomic.Int64 // highest value whose Set returned (one setter)
	var clears atomic.Int64  // Clears begun
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		for i := 0; !stop.Load(); i++ {
			v := next.Add(1)
			c.Set("s"+strconv.Itoa(i%keys), v)
			setDone.Store(v)
		}
	}()
	for range 2 {
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				c.GetOrLoad("l"+strconv.Itoa(i%keys), func(string) (int64, time.Duration, error) {
					v := next.Add(1) // the loader's start
					// Every other load returns only after a Clear began.
					for cl := clears.Load(); i%2 == 0 && clears.Load() == cl && !stop.Load(); {
						runtime.Gosched()
					}
					return v, 0, nil
				})
			}
		}()
	}
	for r := 0; r < rounds && !t.Failed(); r++ {
		set, started := setDone.Load(), next.Load()
		clears.Add(1)
		if err := c.Clear(); err != nil {
			t.Fatal(err)
		}
		for k := range keys {
			if v, err := c.Get("s" + strconv.Itoa(k)); err == nil && v <= set {
				t.Errorf("round %d: Set value %d (its Set returned before the Clear, <= %d) served after it", r, v, set)
			}
			if v, err := c.Get("l" + strconv.Itoa(k)); err == nil && v <= started {
				t.Errorf("round %d: loaded value %d (its loader started before the Clear, <= %d) served after it", r, v, started)
			}
		}
	}
	stop.Store(true)
	wg.Wait()
}
