package inmemory

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
	"github.com/halilbulentorhon/invacache-go/internal/monotime"
)

func newStore[V any](t *testing.T, cfg Config) *Store[V] {
	t.Helper()
	s, err := New[V](cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	t.Cleanup(s.Close)
	return s
}

func cfg(shards, capacity int) Config {
	return Config{ShardCount: shards, Capacity: capacity, SweepInterval: 5 * time.Millisecond}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestGetSetDeleteClear(t *testing.T) {
	leakcheck.Check(t)
	s := newStore[int](t, cfg(4, 100))

	if v, ok := s.Get("a"); ok {
		t.Fatalf("Get(a) on empty store = %d, true; want miss", v)
	}
	s.Set("a", 1, 0)
	s.Set("b", 2, 0)
	s.Set("a", 3, 0) // update
	for _, tc := range []struct {
		key    string
		want   int
		wantOK bool
	}{{"a", 3, true}, {"b", 2, true}, {"c", 0, false}} {
		if got, ok := s.Get(tc.key); got != tc.want || ok != tc.wantOK {
			t.Errorf("Get(%q) = %d, %v; want %d, %v", tc.key, got, ok, tc.want, tc.wantOK)
		}
	}
	if got := s.Len(); got != 2 {
		t.Errorf("Len() = %d; want 2", got)
	}
	if !s.Delete("a") {
		t.Errorf("Delete(a) = false; want true")
	}
	if s.Delete("a") {
		t.Errorf("second Delete(a) = true; want false")
	}
	if _, ok := s.Get("a"); ok {
		t.Errorf("Get(a) after Delete hit; want miss")
	}
	s.Clear()
	if got := s.Len(); got != 0 {
		t.Errorf("Len() after Clear = %d; want 0", got)
	}
	if _, ok := s.Get("b"); ok {
		t.Errorf("Get(b) after Clear hit; want miss")
	}
	s.Set("b", 5, 0) // usable after Clear
	if got, ok := s.Get("b"); got != 5 || !ok {
		t.Errorf("Get(b) after Clear+Set = %d, %v; want 5, true", got, ok)
	}
	st := s.Stats()
	if st.Hits != 3 || st.Misses != 4 {
		t.Errorf("Stats() = %+v; want Hits 3, Misses 4", st)
	}
	if s.KeyHash("x") != s.KeyHash("x") || s.KeyHash("x") == s.KeyHash("y") {
		t.Errorf("KeyHash is not a deterministic hash")
	}
}

func TestTTL(t *testing.T) {
	leakcheck.Check(t)
	c := cfg(2, 100)
	c.DefaultTTL = 30 * time.Millisecond
	s := newStore[string](t, c)

	s.Set("default", "d", 0)
	s.Set("short", "s", 10*time.Millisecond)
	s.Set("long", "l", time.Hour)
	s.Set("never", "n", -1)

	eventually(t, "short and default entries to expire", func() bool {
		_, ok1 := s.Get("short")
		_, ok2 := s.Get("default")
		return !ok1 && !ok2
	})
	for _, k := range []string{"long", "never"} {
		if _, ok := s.Get(k); !ok {
			t.Errorf("Get(%q) missed; want the entry to live on", k)
		}
	}
	eventually(t, "the sweeper to remove expired entries", func() bool {
		return s.Len() == 2 && s.Stats().Expirations == 2
	})
	// Overwriting with an explicit TTL replaces the old deadline.
	s.Set("never", "n2", 5*time.Millisecond)
	eventually(t, "an overwritten entry to expire", func() bool {
		_, ok := s.Get("never")
		return !ok
	})
	// The sweeper skips shards until their earliest deadline; the update
	// above must have lowered it so the entry is swept.
	eventually(t, "the sweeper to remove the overwritten entry", func() bool {
		return s.Len() == 1 && s.Stats().Expirations == 3
	})
	if s.Delete("never") {
		// Delete of an expired entry removes it but reports no live entry.
		t.Errorf("Delete of an expired entry = true; want false")
	}
}

func TestNoDefaultTTLNeverExpiresAndNoSweeper(t *testing.T) {
	leakcheck.Check(t)
	s := newStore[int](t, cfg(2, 10))
	s.Set("a", 1, 0)
	s.mustNotRunSweeper(t)
	s.Set("b", 2, time.Hour)
	s.lifeMu.Lock()
	started := s.started
	s.lifeMu.Unlock()
	if !started {
		t.Errorf("sweeper not started after an expiring Set")
	}
	s.Close()
	s.Close() // idempotent
	if v, ok := s.Get("a"); !ok || v != 1 {
		t.Errorf("Get(a) after Close = %d, %v; want 1, true", v, ok)
	}
	s.Set("c", 3, time.Hour) // must not restart the sweeper
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.stop == nil {
		t.Fatal("stop channel missing")
	}
	select {
	case <-s.done:
	default:
		t.Errorf("sweeper still running after Close")
	}
}

func (s *Store[V]) mustNotRunSweeper(t *testing.T) {
	t.Helper()
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.started {
		t.Errorf("sweeper started although no entry can expire")
	}
}

func TestCapacityHardBoundConcurrent(t *testing.T) {
	leakcheck.Check(t)
	const capacity = 256
	s := newStore[int](t, cfg(8, capacity))
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for i := 0; i < 20000; i++ {
				k := r.IntN(5000)
				s.Set(strconv.Itoa(k), k, 0)
				if i%7 == 0 {
					s.Get(strconv.Itoa(r.IntN(5000)))
				}
			}
		}()
	}
	checks := 0
	go func() { wg.Wait(); stop.Store(true) }()
	for !stop.Load() {
		if n := s.Len(); n > capacity {
			t.Fatalf("Len() = %d; want <= %d", n, capacity)
		}
		checks++
	}
	wg.Wait()
	live := 0
	for k := range 5000 {
		if v, ok := s.Get(strconv.Itoa(k)); ok {
			if v != k {
				t.Fatalf("Get(%d) = %d; want %d", k, v, k)
			}
			live++
		}
	}
	if live > capacity || s.Len() > capacity {
		t.Fatalf("live entries = %d, Len() = %d; want both <= %d", live, s.Len(), capacity)
	}
	if live != s.Len() {
		t.Errorf("live entries = %d, Len() = %d; want equal", live, s.Len())
	}
	if live < capacity*9/10 {
		t.Errorf("live entries = %d; want the store close to full (%d)", live, capacity)
	}
	if s.Stats().Evictions == 0 {
		t.Errorf("Evictions = 0; want > 0")
	}
	t.Logf("%d Len checks during the run", checks)
}

// TestScanResistance shows the hot set survives a one-pass scan of many cold
// keys. Plain LRU would keep none of the hot keys: the scan alone is 20x the
// capacity and touches each cold key after the last hot access.
func TestScanResistance(t *testing.T) {
	leakcheck.Check(t)
	const capacity, hot, cold = 1000, 200, 20000
	s := newStore[int](t, cfg(4, capacity))
	for round := 0; round < 3; round++ {
		for i := range hot {
			k := "hot:" + strconv.Itoa(i)
			if _, ok := s.Get(k); !ok {
				s.Set(k, i, 0)
			}
		}
	}
	for i := range cold {
		k := "cold:" + strconv.Itoa(i)
		if _, ok := s.Get(k); !ok {
			s.Set(k, i, 0)
		}
	}
	hits := 0
	for i := range hot {
		if _, ok := s.Get("hot:" + strconv.Itoa(i)); ok {
			hits++
		}
	}
	if ratio := float64(hits) / hot; ratio < 0.9 {
		t.Errorf("hot-set hit ratio after scan = %.2f; want >= 0.90 (plain LRU: 0)", ratio)
	}
	if n := s.Len(); n > capacity {
		t.Errorf("Len() = %d; want <= %d", n, capacity)
	}
}

func TestSetIf(t *testing.T) {
	leakcheck.Check(t)
	s := newStore[int](t, cfg(2, 10))
	sh := s.shardFor(s.KeyHash("k"))
	tests := []struct {
		name   string
		allow  bool
		want   bool
		wantV  int
		wantOK bool
	}{
		{"rejected", false, false, 0, false},
		{"accepted", true, true, 7, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			got := s.SetIf("k", 7, 0, func() bool {
				calls++
				if sh.mu.TryRLock() {
					sh.mu.RUnlock()
					t.Errorf("ok() ran without the shard write-locked")
				}
				return tc.allow
			})
			if got != tc.want || calls != 1 {
				t.Errorf("SetIf = %v after %d calls of ok; want %v after 1", got, calls, tc.want)
			}
			if v, ok := s.Get("k"); v != tc.wantV || ok != tc.wantOK {
				t.Errorf("Get(k) = %d, %v; want %d, %v", v, ok, tc.wantV, tc.wantOK)
			}
		})
	}
	if !s.SetIf("n", 1, 0, nil) {
		t.Errorf("SetIf with nil ok = false; want true")
	}
}

func TestConfigErrors(t *testing.T) {
	leakcheck.Check(t)
	good := Config{ShardCount: 8, Capacity: 100, SweepInterval: time.Second}
	tests := []struct {
		name  string
		mod   func(*Config)
		field string
	}{
		{"zero shards", func(c *Config) { c.ShardCount = 0 }, "ShardCount"},
		{"negative shards", func(c *Config) { c.ShardCount = -1 }, "ShardCount"},
		{"huge shards", func(c *Config) { c.ShardCount = 1 << 20; c.Capacity = 1 << 30 }, "ShardCount"},
		{"capacity below shards", func(c *Config) { c.Capacity = 4 }, "Capacity (4) is below ShardCount (8)"},
		{"capacity below rounded shards", func(c *Config) { c.ShardCount = 5; c.Capacity = 6 }, "Capacity (6) is below ShardCount (8"},
		{"negative capacity", func(c *Config) { c.Capacity = -1 }, "Capacity"},
		{"negative default ttl", func(c *Config) { c.DefaultTTL = -time.Second }, "DefaultTTL"},
		{"zero sweep interval", func(c *Config) { c.SweepInterval = 0 }, "SweepInterval"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.mod(&c)
			s, err := New[int](c)
			if err == nil {
				s.Close()
				t.Fatalf("New(%+v) = nil error; want one naming %s", c, tc.field)
			}
			if !errors.Is(err, config.ErrInvalidConfig) {
				t.Errorf("error %q does not wrap config.ErrInvalidConfig", err)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.field) || !strings.HasPrefix(msg, "inmemory: ") {
				t.Errorf("error %q; want it to start with \"inmemory: \" and name %q", msg, tc.field)
			}
		})
	}
	s, err := New[int](Config{ShardCount: 5, Capacity: 8, SweepInterval: time.Second})
	if err != nil {
		t.Fatalf("New with ShardCount 5: %v", err)
	}
	defer s.Close()
	if got := len(s.shards); got != 8 {
		t.Errorf("shards = %d; want 8 (rounded up)", got)
	}
}

func TestZeroAllocs(t *testing.T) {
	leakcheck.Check(t)
	s := newStore[int](t, cfg(4, 1000))
	s.Set("present", 1, time.Hour)
	s.Set("forever", 1, -1)
	tests := []struct {
		name string
		fn   func()
	}{
		{"Get hit with TTL", func() { s.Get("present") }},
		{"Get hit without TTL", func() { s.Get("forever") }},
		{"Get miss", func() { s.Get("absent") }},
		{"Set existing key", func() { s.Set("present", 2, time.Hour) }},
		{"SetIf existing key", func() { s.SetIf("forever", 2, -1, func() bool { return true }) }},
		{"KeyHash", func() { s.KeyHash("present") }},
	}
	for _, tc := range tests {
		if got := testing.AllocsPerRun(100, tc.fn); got != 0 {
			t.Errorf("%s: %v allocs per call; want 0", tc.name, got)
		}
	}
}

func TestConcurrentStress(t *testing.T) {
	leakcheck.Check(t)
	c := cfg(8, 512)
	c.DefaultTTL = 20 * time.Millisecond
	c.SweepInterval = time.Millisecond
	s := newStore[string](t, c)
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 2))
			for i := 0; i < 20000; i++ {
				k := "k" + strconv.Itoa(r.IntN(2000))
				switch op := r.IntN(100); {
				case op < 50:
					if v, ok := s.Get(k); ok && v != k {
						t.Errorf("Get(%q) = %q; want %q", k, v, k)
						return
					}
				case op < 80:
					s.Set(k, k, time.Duration(r.IntN(3)-1)*10*time.Millisecond)
				case op < 90:
					s.SetIf(k, k, 0, func() bool { return op%2 == 0 })
				case op < 98:
					s.Delete(k)
				case op < 99:
					_ = s.Len()
					_ = s.Stats()
				default:
					if i%50 == 0 {
						s.Clear()
					}
				}
			}
		}()
	}
	wg.Wait()
	if n := s.Len(); n > 512 {
		t.Errorf("Len() = %d; want <= 512", n)
	}
}

func TestSmallShards(t *testing.T) {
	leakcheck.Check(t)
	// Capacity equal to the shard count: every shard holds one entry.
	s := newStore[int](t, cfg(4, 4))
	for i := range 100 {
		s.Set(fmt.Sprint(i), i, 0)
		s.Get(fmt.Sprint(i))
		if n := s.Len(); n > 4 {
			t.Fatalf("Len() = %d; want <= 4", n)
		}
	}
	for i := range 100 {
		if v, ok := s.Get(fmt.Sprint(i)); ok && v != i {
			t.Fatalf("Get(%d) = %d", i, v)
		}
	}
}

func TestShardLayout(t *testing.T) {
	leakcheck.Check(t)
	var sh shard[int]
	if size := unsafe.Sizeof(sh); size%64 != 0 {
		t.Errorf("unsafe.Sizeof(shard) = %d; want a multiple of 64 (adjust shardPad)", size)
	}
	if off := unsafe.Offsetof(sh.index) + unsafe.Sizeof(sh.index); off > 64 {
		t.Errorf("lookup fields end at byte %d; want them in the first cache line", off)
	}
}

// GetAt judges expiry by the caller's clock reading, so the cache can share
// one reading between the staleness bound and the entry's deadline.
func TestGetAtUsesTheGivenTime(t *testing.T) {
	s := newStore[int](t, cfg(1, 8))
	s.Set("ttl", 1, time.Hour)
	s.Set("forever", 2, -1)
	now := monotime.Now()
	tests := []struct {
		key    string
		at     int64
		wantOK bool
	}{
		{"ttl", now, true},
		{"ttl", now + int64(2*time.Hour), false},
		{"forever", now + int64(1000*time.Hour), true},
		{"absent", now, false},
	}
	for _, tt := range tests {
		if _, ok := s.GetAt(tt.key, tt.at); ok != tt.wantOK {
			t.Errorf("GetAt(%q, now%+v) ok = %v, want %v", tt.key, time.Duration(tt.at-now), ok, tt.wantOK)
		}
	}
}
