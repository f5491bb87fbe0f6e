package store

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
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

// fakeClock is a manual time source for otter; Tick returns nil, so otter
// starts no periodic clean-up goroutine.
type fakeClock struct{ now atomic.Int64 }

func (c *fakeClock) NowNano() int64                      { return c.now.Load() }
func (c *fakeClock) Tick(time.Duration) <-chan time.Time { return nil }
func (c *fakeClock) advance(d time.Duration)             { c.now.Add(int64(d)) }

func TestGetSetDeleteClear(t *testing.T) {
	leakcheck.Check(t)
	s := newStore[string](t, Config{Capacity: 100})
	if v, ok := s.Get("a"); ok {
		t.Fatalf("Get(a) on an empty store = %q, true; want a miss", v)
	}
	s.Set("a", "1", 0)
	s.Set("b", "2", 0)
	s.Set("a", "3", 0) // update
	for _, tc := range []struct {
		key    string
		want   string
		wantOK bool
	}{{"a", "3", true}, {"b", "2", true}, {"c", "", false}} {
		if got, ok := s.Get(tc.key); got != tc.want || ok != tc.wantOK {
			t.Errorf("Get(%s) = %q, %v; want %q, %v", tc.key, got, ok, tc.want, tc.wantOK)
		}
	}
	if !s.Delete("a") || s.Delete("a") {
		t.Errorf("Delete(a) twice: want true then false")
	}
	if got := s.Len(); got != 1 {
		t.Errorf("Len = %d, want 1", got)
	}
	s.Clear()
	if got := s.Len(); got != 0 {
		t.Errorf("Len after Clear = %d, want 0", got)
	}
	if _, ok := s.Get("b"); ok {
		t.Errorf("Get(b) after Clear hit; want a miss")
	}
	st := s.Stats()
	if st.Hits != 2 || st.Misses != 3 {
		t.Errorf("Stats hits/misses = %d/%d, want 2/3", st.Hits, st.Misses)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg   Config
		field string
	}{
		{Config{Capacity: 0}, "Capacity"},
		{Config{Capacity: -1}, "Capacity"},
		{Config{Capacity: 10, DefaultTTL: -time.Second}, "DefaultTTL"},
	} {
		_, err := New[int](tc.cfg)
		if !errors.Is(err, ErrInvalidConfig) || err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("New(%+v) = %v; want ErrInvalidConfig naming %s", tc.cfg, err, tc.field)
		}
	}
}

// TestTTL drives the store's clock by hand: per-entry TTL and no expiry,
// with a default TTL (otter's expiry) and without one (deadlines the store
// checks itself): an expired entry is never returned, before or after it
// was removed.
func TestTTL(t *testing.T) {
	for _, tc := range []struct {
		name       string
		defaultTTL time.Duration
		expiring   bool
	}{
		{"default TTL (otter expiry)", time.Minute, true},
		{"no default TTL (store deadlines)", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakcheck.Check(t)
			clk := &fakeClock{}
			clk.now.Store(int64(time.Hour))
			s := newStore[int](t, Config{Capacity: 100, DefaultTTL: tc.defaultTTL, clock: clk})
			if s.expiring != tc.expiring {
				t.Fatalf("expiring = %v, want %v", s.expiring, tc.expiring)
			}
			dflt := time.Duration(0) // the default TTL, given per entry when the store has none
			if !tc.expiring {
				dflt = time.Minute
			}
			s.Set("default", 1, dflt)
			s.Set("short", 2, 10*time.Second)
			s.Set("never", 3, -1)
			s.Set("long", 4, time.Hour)
			s.Set("updated", 5, 10*time.Second)
			s.Set("updated", 6, -1) // an update takes the new TTL
			s.SetIf("setif", 7, 10*time.Second, func() bool { return true })
			check := func(when string, want map[string]int) {
				t.Helper()
				for _, k := range []string{"default", "short", "never", "long", "updated", "setif"} {
					v, ok := s.Get(k)
					w, wantOK := want[k]
					if ok != wantOK || v != w {
						t.Errorf("%s: Get(%s) = %d, %v; want %d, %v", when, k, v, ok, w, wantOK)
					}
				}
			}
			check("at once", map[string]int{"default": 1, "short": 2, "never": 3, "long": 4, "updated": 6, "setif": 7})
			clk.advance(10*time.Second - 1)
			check("just before 10s", map[string]int{"default": 1, "short": 2, "never": 3, "long": 4, "updated": 6, "setif": 7})
			clk.advance(1)
			check("at 10s", map[string]int{"default": 1, "never": 3, "long": 4, "updated": 6})
			clk.advance(time.Minute)
			check("after 70s", map[string]int{"never": 3, "long": 4, "updated": 6})
			// Otter's maintenance (Len) removes expired entries; without a
			// default TTL, the Gets above removed them.
			if n := s.Len(); n != 3 {
				t.Errorf("Len after expiry = %d, want 3", n)
			}
			if got := s.Stats().Expirations; got != 3 {
				t.Errorf("Stats.Expirations = %d, want 3", got)
			}
			if s.Delete("short") {
				t.Errorf("Delete(short) after its TTL = true, want false")
			}
			clk.advance(100 * 365 * 24 * time.Hour)
			check("after a century", map[string]int{"never": 3, "updated": 6})
		})
	}
}

// TestExpiredEntryReplacedIsKept: without a default TTL, the Get that finds
// an entry expired removes it only if no write replaced it in between.
func TestExpiredEntryReplacedIsKept(t *testing.T) {
	clk := &fakeClock{}
	s := newStore[int](t, Config{Capacity: 10, clock: clk})
	s.Set("k", 1, time.Second)
	it, _ := s.c.GetIfPresent("k")
	clk.advance(time.Second)
	s.Set("k", 2, time.Minute) // the write that lands between the lookup and the removal
	if s.unexpired("k", it) {
		t.Fatalf("unexpired(old item) = true, want false")
	}
	if v, ok := s.Get("k"); !ok || v != 2 {
		t.Errorf("Get(k) = %d, %v; want 2, true (the newer write kept)", v, ok)
	}
	if got := s.Stats().Expirations; got != 0 {
		t.Errorf("Stats.Expirations = %d, want 0", got)
	}
}

// TestNoDefaultTTLNeverExpires: with DefaultTTL 0, a Set with ttl 0 never
// expires.
func TestNoDefaultTTLNeverExpires(t *testing.T) {
	leakcheck.Check(t)
	clk := &fakeClock{}
	s := newStore[int](t, Config{Capacity: 10, clock: clk})
	s.Set("k", 1, 0)
	clk.advance(200 * 365 * 24 * time.Hour)
	if v, ok := s.Get("k"); !ok || v != 1 {
		t.Errorf("Get(k) = %d, %v; want 1, true", v, ok)
	}
}

// TestCapacityIsAHardBound: after a concurrent burst of Sets, once otter's
// maintenance ran (Len runs it), the store holds at most Capacity entries
// and serves at most that many.
func TestCapacityIsAHardBound(t *testing.T) {
	leakcheck.Check(t)
	const capacity, keys = 256, 2000
	s := newStore[int](t, Config{Capacity: capacity})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 4000 {
				k := (i*7919 + w*104729) % keys
				s.Set(strconv.Itoa(k), k, 0)
				if i%7 == 0 {
					s.Get(strconv.Itoa((k * 31) % keys))
				}
			}
		}()
	}
	wg.Wait()
	n := s.Len()
	live := 0
	for k := range keys {
		if v, ok := s.Get(strconv.Itoa(k)); ok {
			if v != k {
				t.Fatalf("Get(%d) = %d; want %d", k, v, k)
			}
			live++
		}
	}
	if n > capacity || live > capacity {
		t.Errorf("Len = %d, live entries = %d; want both <= %d", n, live, capacity)
	}
	if live < capacity/2 {
		t.Errorf("live entries = %d; want the store near full (%d)", live, capacity)
	}
	if s.Stats().Evictions == 0 {
		t.Errorf("Stats.Evictions = 0 after 16k Sets into %d slots; want > 0", capacity)
	}
}

// TestItemFromBeforeClearIsNeverServed is the race Clear guards against: a
// write that read the epoch before a Clear and lands after otter's
// InvalidateAll passed its key. The item stays in otter but is not served.
func TestItemFromBeforeClearIsNeverServed(t *testing.T) {
	leakcheck.Check(t)
	s := newStore[int](t, Config{Capacity: 10})
	before := s.epoch.Load()
	s.Clear()
	s.c.Set("k", item[int]{v: 1, epoch: before}) // the racing write
	if v, ok := s.Get("k"); ok {
		t.Errorf("Get(k) = %d, true; want a miss (item from before the Clear)", v)
	}
	if v, ok := s.Peek("k"); ok {
		t.Errorf("Peek(k) = %d, true; want a miss", v)
	}
	if s.Delete("k") {
		t.Errorf("Delete(k) = true; want false (nothing live was removed)")
	}
	s.Set("k", 2, 0)
	if v, ok := s.Get("k"); !ok || v != 2 {
		t.Errorf("Get(k) after a new Set = %d, %v; want 2, true", v, ok)
	}
}

// TestClearRacingSets: Sets that completed before a Clear started are never
// served after it returns, while other Sets keep racing it.
func TestClearRacingSets(t *testing.T) {
	leakcheck.Check(t)
	const writers, keysPer, rounds = 2, 64, 50
	s := newStore[int](t, Config{Capacity: 10_000})
	var names [writers][keysPer]string
	for w := range writers {
		for k := range keysPer {
			names[w][k] = fmt.Sprintf("%d-%d", w, k)
		}
	}
	var completed [writers]atomic.Int64 // highest value whose Set returned
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for v := 1; !stop.Load(); v++ {
				s.Set(names[w][v%keysPer], v, 0)
				completed[w].Store(int64(v))
			}
		}()
	}
	for range rounds {
		var done [writers]int64
		for w := range writers {
			done[w] = completed[w].Load()
		}
		s.Clear()
		for w := range writers {
			for k := range keysPer {
				if v, ok := s.Get(names[w][k]); ok && int64(v) <= done[w] {
					t.Fatalf("writer %d key %d: value %d (written before the Clear, <= %d) served after it", w, k, v, done[w])
				}
			}
		}
	}
	stop.Store(true)
	wg.Wait()
}

func TestSetIf(t *testing.T) {
	leakcheck.Check(t)
	s := newStore[int](t, Config{Capacity: 10})
	for _, tc := range []struct {
		name   string
		allow  bool
		want   bool
		wantV  int
		wantOK bool
	}{
		{"rejected", false, false, 0, false},
		{"accepted", true, true, 7, true},
	} {
		calls := 0
		got := s.SetIf("k", 7, 0, func() bool { calls++; return tc.allow })
		if got != tc.want || calls != 1 {
			t.Errorf("%s: SetIf = %v after %d calls of ok; want %v after 1", tc.name, got, calls, tc.want)
		}
		if v, ok := s.Get("k"); v != tc.wantV || ok != tc.wantOK {
			t.Errorf("%s: Get(k) = %d, %v; want %d, %v", tc.name, v, ok, tc.wantV, tc.wantOK)
		}
	}
	if !s.SetIf("n", 1, 0, nil) {
		t.Errorf("SetIf with nil ok = false; want true")
	}
	// A rejected SetIf leaves an existing value as it was.
	if s.SetIf("k", 9, 0, func() bool { return false }) {
		t.Errorf("SetIf rejected = true; want false")
	}
	if v, _ := s.Get("k"); v != 7 {
		t.Errorf("Get(k) after a rejected SetIf = %d; want 7", v)
	}
}

// TestCloseStopsEveryGoroutine: with expiry (otter's periodic clean-up) and
// enough traffic for maintenance on the executor, Close leaves nothing
// running, and the store stays usable after it.
func TestCloseStopsEveryGoroutine(t *testing.T) {
	// otter's periodic goroutine also ends once the cache is collected, so
	// the store stays reachable until the leak check is over.
	t.Cleanup(func() { keepAlive = nil })
	leakcheck.Check(t)
	s, err := New[int](Config{Capacity: 100, DefaultTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	keepAlive = s
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5000 {
				k := strconv.Itoa((i + g) % 300)
				if _, ok := s.Get(k); !ok {
					s.Set(k, i, 0)
				}
			}
		}()
	}
	wg.Wait()
	s.Close()
	s.Close() // idempotent
	for i := range 1000 {
		s.Set(strconv.Itoa(i), i, 0)
		s.Get(strconv.Itoa(i))
	}
	if n := s.Len(); n > 100 {
		t.Errorf("Len after Close and 1000 Sets = %d, want <= 100", n)
	}
}

var keepAlive any

func TestGetDoesNotAllocate(t *testing.T) {
	s := newStore[string](t, Config{Capacity: 100, DefaultTTL: time.Hour})
	s.Set("k", "v", 0)
	if got := testing.AllocsPerRun(1000, func() { s.Get("k") }); got != 0 {
		t.Errorf("allocations per Get hit = %v, want 0", got)
	}
	if got := testing.AllocsPerRun(1000, func() { s.Get("absent") }); got != 0 {
		t.Errorf("allocations per Get miss = %v, want 0", got)
	}
}

// TestHitsFromManyGoroutinesAddUp: the striped hit counter loses nothing.
func TestHitsFromManyGoroutinesAddUp(t *testing.T) {
	s := newStore[int](t, Config{Capacity: 10})
	s.Set("k", 1, 0)
	const goroutines, each = 8, 1000
	var wg sync.WaitGroup
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				s.Get("k")
			}
		}()
	}
	wg.Wait()
	if got := s.Stats().Hits; got != goroutines*each {
		t.Errorf("Stats.Hits = %d, want %d", got, goroutines*each)
	}
}

// TestLookupCounts: Lookup counts nothing; CountHit and CountMiss count
// what the caller decided, and a Lookup hit allocates nothing.
func TestLookupCounts(t *testing.T) {
	s := newStore[int](t, Config{Capacity: 10})
	s.Set("k", 1, 0)
	if v, ok := s.Lookup("k"); !ok || v != 1 {
		t.Fatalf("Lookup(k) = %d, %v; want 1, true", v, ok)
	}
	if v, ok := s.Lookup("absent"); ok || v != 0 {
		t.Errorf("Lookup(absent) = %d, %v; want 0, false", v, ok)
	}
	if st := s.Stats(); st.Hits != 0 || st.Misses != 0 {
		t.Errorf("Stats after two Lookups = %d hits, %d misses; want 0, 0", st.Hits, st.Misses)
	}
	s.CountHit()
	s.CountHit()
	s.CountMiss()
	if st := s.Stats(); st.Hits != 2 || st.Misses != 1 {
		t.Errorf("Stats = %d hits, %d misses; want 2, 1", st.Hits, st.Misses)
	}
	if got := testing.AllocsPerRun(1000, func() { s.Lookup("k") }); got != 0 {
		t.Errorf("allocations per Lookup = %v, want 0", got)
	}
}

// TestStatsCountEveryRemoval: with no Deletes, every entry written and no
// longer held was evicted or expired, and the counters say which, exactly.
func TestStatsCountEveryRemoval(t *testing.T) {
	for _, defaultTTL := range []time.Duration{time.Hour, 0} {
		t.Run(fmt.Sprintf("DefaultTTL %v", defaultTTL), func(t *testing.T) {
			leakcheck.Check(t)
			clk := &fakeClock{}
			const capacity, written, short = 100, 1000, 30
			s := newStore[int](t, Config{Capacity: capacity, DefaultTTL: defaultTTL, clock: clk})
			// Short-lived entries first, read a few times so the policy
			// keeps some of them through the writes that follow.
			for i := range short {
				s.Set("short"+strconv.Itoa(i), i, time.Second)
				for range 3 {
					s.Get("short" + strconv.Itoa(i))
				}
			}
			s.Len()
			for i := range written {
				s.Set(strconv.Itoa(i), i, -1)
			}
			held := s.Len()
			st := s.Stats()
			if held != capacity || st.Evictions != written+short-capacity || st.Expirations != 0 {
				t.Errorf("after %d Sets into %d slots: Len = %d, evictions/expirations = %d/%d; want %d, %d/0",
					written+short, capacity, held, st.Evictions, st.Expirations, capacity, written+short-capacity)
			}
			var liveShort uint64 // the policy may have evicted some
			for i := range short {
				if _, ok := s.c.GetIfPresent("short" + strconv.Itoa(i)); ok {
					liveShort++
				}
			}
			if liveShort == 0 {
				t.Fatalf("no short-lived entry held; the test needs some")
			}
			clk.advance(time.Minute)
			// Expired entries are removed by otter's maintenance (Len) with a
			// default TTL, else by the Get that finds them expired.
			for i := range short {
				if _, ok := s.Get("short" + strconv.Itoa(i)); ok {
					t.Errorf("Get(short%d) after its TTL hit; want a miss", i)
				}
			}
			held = s.Len()
			st = s.Stats()
			if got := st.Evictions + st.Expirations + uint64(held); got != written+short || st.Expirations != liveShort {
				t.Errorf("evictions %d + expirations %d + held %d = %d; want the sum %d and expirations %d (short-lived entries held)",
					st.Evictions, st.Expirations, held, got, written+short, liveShort)
			}
		})
	}
}
