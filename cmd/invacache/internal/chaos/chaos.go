package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	invacache "github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/cmd/invacache/internal/simdb"
	"github.com/halilbulentorhon/invacache-go/cmd/invacache/internal/workload"
	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/faultproxy"
	"github.com/halilbulentorhon/invacache-go/internal/redisserver"
	"github.com/halilbulentorhon/invacache-go/invacachetest"

	// The nodes select the Redis driver by Type "redis".
	_ "github.com/halilbulentorhon/invacache-go/invalidation/drivers/redis"
)

// ErrInvalidConfig is wrapped by Run for a bad Config field.
var ErrInvalidConfig = errors.New("chaos: invalid config")

// Kind is a kind of fault.
type Kind string

// The fault kinds, in the default rotation order.
const (
	Kill      Kind = "kill"
	Cut       Kind = "cut"
	Blackhole Kind = "blackhole"
	Slow      Kind = "slow"
	Partition Kind = "partition"
)

// AllKinds is the default rotation.
var AllKinds = []Kind{Kill, Cut, Blackhole, Slow, Partition}

// ParseKinds reads a comma-separated list of kinds ("" or "all" = AllKinds).
func ParseKinds(s string) ([]Kind, error) {
	if s == "" || s == "all" {
		return slices.Clone(AllKinds), nil
	}
	var ks []Kind
	for _, f := range strings.Split(s, ",") {
		k := Kind(strings.TrimSpace(f))
		if !slices.Contains(AllKinds, k) {
			return nil, fmt.Errorf("chaos: unknown fault kind %q (want %s): %w", k, kindList(AllKinds), ErrInvalidConfig)
		}
		if !slices.Contains(ks, k) {
			ks = append(ks, k)
		}
	}
	return ks, nil
}

func kindList(ks []Kind) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = string(k)
	}
	return strings.Join(s, ",")
}

// Config configures a run. Zero fields take the defaults noted.
type Config struct {
	Duration       time.Duration // workload time; default 30s
	Nodes          int           // cache nodes, >= 2; default 4
	Keys           int           // keys in the database; default 200
	ReadersPerNode int           // default 2
	WritersPerNode int           // default 2
	ReadRate       int           // reads/s per reader; default 1000
	WriteRate      int           // writes/s per writer (while not blocked in Flush); default 25
	DBLatency      time.Duration // simulated database read latency; default 200µs

	MaxStaleness  time.Duration // the nodes' InvalidationConfig.MaxStaleness; default 1s
	PublishWindow time.Duration // bound: acknowledged message in flight to a live subscriber; default 100ms
	Slack         time.Duration // bound: scheduling noise; default 400ms

	Faults     []Kind        // rotation; default AllKinds
	FaultPause time.Duration // quiet time between faults; default 300ms
	Interval   time.Duration // report interval; default 1s
	Seed       uint64        // workload randomness; 0 = random

	// NoBroadcast makes writers update only their own cache: a negative
	// control that shows the check catching stale reads.
	NoBroadcast bool

	// Logger receives the library's warnings; nil = silent.
	Logger *slog.Logger
}

func (c *Config) resolve() error {
	def := func(p *time.Duration, d time.Duration) {
		if *p == 0 {
			*p = d
		}
	}
	defInt := func(p *int, d int) {
		if *p == 0 {
			*p = d
		}
	}
	def(&c.Duration, 30*time.Second)
	defInt(&c.Nodes, 4)
	defInt(&c.Keys, 200)
	defInt(&c.ReadersPerNode, 2)
	defInt(&c.WritersPerNode, 2)
	defInt(&c.ReadRate, 1000)
	defInt(&c.WriteRate, 25)
	def(&c.DBLatency, 200*time.Microsecond)
	def(&c.MaxStaleness, time.Second)
	def(&c.PublishWindow, 100*time.Millisecond)
	def(&c.Slack, 400*time.Millisecond)
	def(&c.FaultPause, 300*time.Millisecond)
	def(&c.Interval, time.Second)
	if c.Faults == nil {
		c.Faults = slices.Clone(AllKinds)
	}
	if c.Seed == 0 {
		c.Seed = rand.Uint64()
	}
	bad := func(field, why string) error { return fmt.Errorf("chaos: %s %s: %w", field, why, ErrInvalidConfig) }
	switch {
	case c.Duration < 5*time.Second:
		return bad("Duration", "must be at least 5s")
	case c.Nodes < 2:
		return bad("Nodes", "must be at least 2")
	case c.Keys < 1:
		return bad("Keys", "must be at least 1")
	case c.ReadersPerNode < 1 || c.WritersPerNode < 1:
		return bad("ReadersPerNode/WritersPerNode", "must be at least 1")
	case c.ReadRate < 1 || c.WriteRate < 1:
		return bad("ReadRate/WriteRate", "must be at least 1 per second")
	case c.DBLatency < 0 || c.MaxStaleness < 0 || c.PublishWindow < 0 || c.Slack < 0 || c.FaultPause < 0 || c.Interval < 0:
		return bad("durations", "must not be negative")
	case c.MaxStaleness == 0:
		return bad("MaxStaleness", "must be positive (the bound needs it)")
	}
	return nil
}

// Report is the outcome of a run.
type Report struct {
	Elapsed time.Duration
	Bound   invacachetest.Bound
	Seed    uint64

	Reads, ReadErrors     uint64
	Writes, WriteErrors   uint64 // Writes = acknowledged
	Hits, Misses, Loads   uint64
	Gaps, ClearsOnGap     uint64
	PublishFailures       uint64
	Faults                map[Kind]int // injected, by kind
	SlowDrops             int          // slow faults where Redis dropped the subscriber
	FaultProblems         []string     // faults whose effect could not be verified, or no recovery
	MaxStalenessObserved  time.Duration
	Violations            uint64
	FirstViolation        string
	GoroutinesBaseline    int
	GoroutinesPerCycle    []int // after each fault, once every node recovered
	GoroutinesAfterClose  int
	HeapInUse             []uint64 // bytes, one per report interval
	HeapInUseAfterWarmup  uint64   // first sample after the first fault cycle
	HeapInUseLastInterval uint64
}

// HitRatio is Hits/(Hits+Misses), 0 without lookups.
func (r *Report) HitRatio() float64 {
	if r.Hits+r.Misses == 0 {
		return 0
	}
	return float64(r.Hits) / float64(r.Hits+r.Misses)
}

// node is one cache replica and its link.
type node struct {
	id    int
	cache invacache.Cache[uint64]
	proxy *faultproxy.Proxy
	cnt   workload.Counters // this node's readers and writers
}

// waiting is the number of this node's writes not yet acknowledged (its
// writers wait in Flush).
func (n *node) waiting() int64 {
	return int64(n.cnt.Sets.Load()+n.cnt.Deletes.Load()) - int64(n.cnt.Acks.Load()+n.cnt.Aborted.Load())
}

// run is the state of one Run.
type run struct {
	cfg     Config
	w       io.Writer
	srv     *redisserver.Server
	nodes   []*node
	db      *simdb.DB
	chk     *invacachetest.Checker
	start   time.Time
	channel string

	mu     sync.Mutex // guards rep's fault fields and serializes output lines
	rep    Report
	faultN int // faults injected so far
}

const channel = "invacache:chaos"

// zipf is the key popularity exponent of readers and writers.
const zipf = 1.1

// Run performs a chaos run, printing progress to w, and returns its report.
// It returns an error when the setup fails or ctx ends before the run is
// over; violations are in the report (Report.Violations), not an error.
func Run(ctx context.Context, cfg Config, w io.Writer) (*Report, error) {
	if err := cfg.resolve(); err != nil {
		return nil, err
	}
	r := &run{cfg: cfg, w: w, channel: channel}
	r.rep.Seed = cfg.Seed
	r.rep.Faults = map[Kind]int{}
	r.rep.Bound = invacachetest.Bound{MaxStaleness: cfg.MaxStaleness, PublishWindow: cfg.PublishWindow, Slack: cfg.Slack}
	r.rep.GoroutinesBaseline = runtime.NumGoroutine()

	if err := r.setup(); err != nil {
		r.teardown()
		return nil, err
	}
	err := r.execute(ctx)
	r.teardown()
	r.rep.GoroutinesAfterClose = settleGoroutines(r.rep.GoroutinesBaseline, 5*time.Second)
	r.printSummary()
	if err != nil {
		return &r.rep, err
	}
	return &r.rep, nil
}

func (r *run) setup() error {
	srv, err := redisserver.Start(redisserver.Options{})
	if err != nil {
		return fmt.Errorf("chaos: start redis-server: %w", err)
	}
	r.srv = srv
	logger := r.cfg.Logger
	for i := 0; i < r.cfg.Nodes; i++ {
		p, err := faultproxy.New(srv.Addr())
		if err != nil {
			return fmt.Errorf("chaos: node %d proxy: %w", i, err)
		}
		n := &node{id: i, proxy: p}
		r.nodes = append(r.nodes, n)
		c, err := invacache.NewCache[uint64](config.InvaCacheConfig{
			Backend: &config.BackendConfig{InMemory: &config.InMemoryConfig{ShardCount: 16, Capacity: max(2*r.cfg.Keys, 1024)}},
			Invalidation: &config.InvalidationConfig{
				Type: "redis",
				// Each node dials its own proxy: its own hub, its own connections.
				Redis:        &config.RedisInvalidationConfig{Address: p.Addr(), Channel: r.channel, DialTimeout: 2 * time.Second},
				MaxStaleness: r.cfg.MaxStaleness,
			},
			Logger: logger,
		})
		if err != nil {
			return fmt.Errorf("chaos: node %d: %w", i, err)
		}
		n.cache = c
	}
	if err := r.waitRecovered(10 * time.Second); err != nil {
		return fmt.Errorf("chaos: nodes did not subscribe: %w", err)
	}
	r.db = simdb.New("key:", r.cfg.Keys, r.cfg.DBLatency)
	r.chk = invacachetest.NewChecker(r.rep.Bound)
	return nil
}

func (r *run) teardown() {
	for _, n := range r.nodes {
		if n.cache != nil {
			n.cache.Close()
		}
	}
	for _, n := range r.nodes {
		n.proxy.Close()
	}
	if r.srv != nil {
		r.srv.Close()
	}
}

// settleGoroutines polls until the goroutine count is back near baseline
// (or the deadline) and returns the last count.
func settleGoroutines(baseline int, timeout time.Duration) int {
	deadline := time.Now().Add(timeout)
	for {
		n := runtime.NumGoroutine()
		if n <= baseline+2 || time.Now().After(deadline) {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// execute runs the workload, the fault schedule and the reporter.
func (r *run) execute(ctx context.Context) error {
	cfg := r.cfg
	fmt.Fprintf(r.w, "invacache chaos: %d nodes over redis-server %s (one fault proxy per node), channel %q, seed %d\n",
		cfg.Nodes, r.srv.Addr(), r.channel, cfg.Seed)
	fmt.Fprintf(r.w, "workload: %d keys (zipf 1.1); %d readers/node at %d reads/s (GetOrLoad from the database); %d writers/node at up to %d writes/s (database write, then Set+WithInvalidation or Delete+WithDeleteInvalidation, then Flush = acknowledged)\n",
		cfg.Keys, cfg.ReadersPerNode, cfg.ReadRate, cfg.WritersPerNode, cfg.WriteRate)
	if cfg.NoBroadcast {
		fmt.Fprintln(r.w, "NO BROADCAST: writers update only their own cache (negative control: the check must count stale reads)")
	}
	fmt.Fprintf(r.w, "faults: %s in rotation, %v apart, for %v\n", kindList(cfg.Faults), cfg.FaultPause, cfg.Duration)
	fmt.Fprintf(r.w, "bound: %s\n", r.rep.Bound)
	fmt.Fprintf(r.w, "  (a read that started at t and returned version v is a violation if a newer version was acknowledged before t - %v)\n\n", r.rep.Bound.Total())
	fmt.Fprintf(r.w, "%7s %8s %8s %6s %7s %6s %6s %5s %10s %9s\n", "time", "reads/s", "writes/s", "hit%", "serving", "gaps", "viol", "faults", "goroutines", "heap")

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	r.start = time.Now()
	var wg sync.WaitGroup
	for _, n := range r.nodes {
		for i := 0; i < cfg.ReadersPerNode; i++ {
			rd := workload.Reader{Cache: n.cache, DB: r.db, Check: r.chk, Counters: &n.cnt,
				Rate: cfg.ReadRate, Zipf: zipf, Seed: cfg.Seed + uint64(n.id*100+i)}
			wg.Add(1)
			go func() { defer wg.Done(); rd.Run(runCtx) }()
		}
		for i := 0; i < cfg.WritersPerNode; i++ {
			wr := workload.Writer{Cache: n.cache, DB: r.db, Check: r.chk, Counters: &n.cnt,
				Rate: cfg.WriteRate, Zipf: zipf, Seed: cfg.Seed + uint64(10_000+n.id*100+i), DeleteShare: 0.5, NoBroadcast: cfg.NoBroadcast}
			wg.Add(1)
			go func() { defer wg.Done(); wr.Run(runCtx) }()
		}
	}
	reportDone := make(chan struct{})
	go func() { defer close(reportDone); r.reporter(runCtx) }()

	ferr := r.schedule(runCtx)
	stop()
	wg.Wait()
	<-reportDone
	r.rep.Elapsed = time.Since(r.start)
	r.collect()
	if ferr != nil {
		return ferr
	}
	return ctx.Err()
}

// schedule injects faults in rotation until the run's time is up. It stops
// early only when ctx ends.
func (r *run) schedule(ctx context.Context) error {
	end := r.start.Add(r.cfg.Duration)
	for i := 0; ; i++ {
		if !sleepCtx(ctx, r.cfg.FaultPause) {
			return nil
		}
		// A fault cycle (inject, hold, heal, recover) takes a few seconds;
		// do not start one that would run past the end.
		if time.Until(end) < 4*time.Second {
			sleepCtx(ctx, time.Until(end))
			return nil
		}
		kind := r.cfg.Faults[i%len(r.cfg.Faults)]
		round := i / len(r.cfg.Faults)
		target := r.nodes[i%len(r.nodes)]
		t0 := time.Now()
		desc, problem := r.inject(ctx, kind, round, target)
		if ctx.Err() != nil {
			return nil
		}
		recErr := r.waitRecovered(15 * time.Second)
		g := runtime.NumGoroutine()
		r.mu.Lock()
		r.faultN++
		r.rep.Faults[kind]++
		r.rep.GoroutinesPerCycle = append(r.rep.GoroutinesPerCycle, g)
		if kind == Slow && problem == "" {
			r.rep.SlowDrops++ // verified: Redis dropped the subscriber and it resubscribed
		}
		if problem != "" {
			r.rep.FaultProblems = append(r.rep.FaultProblems, fmt.Sprintf("%s #%d: %s", kind, r.rep.Faults[kind], problem))
		}
		if recErr != nil {
			r.rep.FaultProblems = append(r.rep.FaultProblems, fmt.Sprintf("%s #%d: %v", kind, r.rep.Faults[kind], recErr))
		}
		status := "recovered"
		if recErr != nil {
			status = "NOT RECOVERED"
		}
		if problem != "" {
			status += "; UNVERIFIED: " + problem
		}
		fmt.Fprintf(r.w, "%6.1fs  fault %-9s #%d: %s; %s after %v; goroutines %d\n",
			t0.Sub(r.start).Seconds(), kind, r.rep.Faults[kind], desc, status, time.Since(t0).Round(time.Millisecond), g)
		r.mu.Unlock()
	}
}

// waitRecovered polls until every node is subscribed and serving.
func (r *run) waitRecovered(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		down := 0
		for _, n := range r.nodes {
			st := n.cache.Stats().Invalidation
			if !st.LinkUp || !st.Serving {
				down++
			}
		}
		if down == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("chaos: %d of %d nodes not subscribed and serving after %v", down, len(r.nodes), timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sleepCtx sleeps d; false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// snapshot is a sum over the nodes for the periodic report.
type snapshot struct {
	at                   time.Time
	reads, writes        uint64
	readErrors           uint64
	writeErrors          uint64
	hits, misses         uint64
	gaps, viol           uint64
	serving, faults      int
	goroutines           int
	heapInUse            uint64
	publishFailures      uint64
	clearsOnGap, loadsDB uint64
}

func (r *run) snap() snapshot {
	s := snapshot{at: time.Now(), viol: r.chk.Stale()}
	for _, n := range r.nodes {
		s.reads += n.cnt.Reads.Load()
		s.readErrors += n.cnt.ReadErrors.Load()
		s.writes += n.cnt.Acks.Load()
		s.writeErrors += n.cnt.WriteErrors.Load()
		st := n.cache.Stats()
		s.hits += st.Hits
		s.misses += st.Misses
		s.gaps += st.Invalidation.Gaps
		s.clearsOnGap += st.Invalidation.ClearsOnGap
		s.publishFailures += st.Invalidation.PublishFailures
		if st.Invalidation.Serving {
			s.serving++
		}
	}
	s.loadsDB = r.db.Reads()
	r.mu.Lock()
	s.faults = r.faultN
	r.mu.Unlock()
	s.goroutines = runtime.NumGoroutine()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.heapInUse = ms.HeapInuse
	return s
}

func (r *run) reporter(ctx context.Context) {
	prev := snapshot{at: r.start}
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cur := r.snap()
		secs := cur.at.Sub(prev.at).Seconds()
		r.mu.Lock()
		r.rep.HeapInUse = append(r.rep.HeapInUse, cur.heapInUse)
		if r.rep.HeapInUseAfterWarmup == 0 && cur.faults >= len(r.cfg.Faults) {
			r.rep.HeapInUseAfterWarmup = cur.heapInUse
		}
		fmt.Fprintf(r.w, "%6.1fs %8.0f %8.0f %6s %4d/%d %6d %6d %5d %10d %7.1fMB\n",
			cur.at.Sub(r.start).Seconds(), float64(cur.reads-prev.reads)/secs, float64(cur.writes-prev.writes)/secs,
			ratio(cur.hits-prev.hits, cur.misses-prev.misses), cur.serving, len(r.nodes), cur.gaps, cur.viol, cur.faults,
			cur.goroutines, float64(cur.heapInUse)/(1<<20))
		if cur.viol > prev.viol {
			fmt.Fprintf(r.w, "%6.1fs  VIOLATION: %d reads beyond the bound in this interval; first of the run: %s\n",
				cur.at.Sub(r.start).Seconds(), cur.viol-prev.viol, r.chk.FirstStale())
		}
		r.mu.Unlock()
		prev = cur
	}
}

func ratio(hits, misses uint64) string {
	if hits+misses == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(hits)/float64(hits+misses))
}

// collect fills the report's totals (before the nodes close).
func (r *run) collect() {
	s := r.snap()
	r.rep.Reads, r.rep.ReadErrors = s.reads, s.readErrors
	r.rep.Writes, r.rep.WriteErrors = s.writes, s.writeErrors
	r.rep.Hits, r.rep.Misses, r.rep.Loads = s.hits, s.misses, s.loadsDB
	r.rep.Gaps, r.rep.ClearsOnGap = s.gaps, s.clearsOnGap
	r.rep.PublishFailures = s.publishFailures
	r.rep.MaxStalenessObserved = r.chk.MaxAge()
	r.rep.Violations = r.chk.Stale()
	r.rep.FirstViolation = r.chk.FirstStale()
	r.rep.HeapInUseLastInterval = s.heapInUse
}

func (r *run) printSummary() {
	rep := &r.rep
	w := r.w
	fmt.Fprintln(w)
	fmt.Fprintf(w, "summary after %.1fs (%d nodes, seed %d):\n", rep.Elapsed.Seconds(), r.cfg.Nodes, rep.Seed)
	fmt.Fprintf(w, "  reads:        %d (hit ratio %.1f%%), database loads %d, read errors %d\n", rep.Reads, 100*rep.HitRatio(), rep.Loads, rep.ReadErrors)
	fmt.Fprintf(w, "  writes:       %d acknowledged, write errors %d, publish failures retried %d\n", rep.Writes, rep.WriteErrors, rep.PublishFailures)
	total := 0
	var parts []string
	for _, k := range r.cfg.Faults {
		total += rep.Faults[k]
		p := fmt.Sprintf("%s %d", k, rep.Faults[k])
		if k == Slow {
			p += fmt.Sprintf(" (dropped by Redis %d)", rep.SlowDrops)
		}
		parts = append(parts, p)
	}
	fmt.Fprintf(w, "  faults:       %d injected: %s\n", total, strings.Join(parts, ", "))
	fmt.Fprintf(w, "  gaps:         %d possible losses detected, %d cache clears because of them\n", rep.Gaps, rep.ClearsOnGap)
	fmt.Fprintf(w, "  bound:        %s\n", rep.Bound)
	fmt.Fprintf(w, "  max staleness observed: %v (longest a read returned an old version after a newer one was acknowledged)\n", rep.MaxStalenessObserved.Round(time.Microsecond))
	cycles := fmt.Sprint(rep.GoroutinesPerCycle)
	if n := len(rep.GoroutinesPerCycle); n > 20 {
		cycles = fmt.Sprintf("min %d, max %d over %d cycles, last ten %v", slices.Min(rep.GoroutinesPerCycle),
			slices.Max(rep.GoroutinesPerCycle), n, rep.GoroutinesPerCycle[n-10:])
	}
	fmt.Fprintf(w, "  goroutines:   baseline %d, after each fault cycle %s, after close %d\n", rep.GoroutinesBaseline, cycles, rep.GoroutinesAfterClose)
	if len(rep.HeapInUse) > 0 {
		lo, hi := slices.Min(rep.HeapInUse), slices.Max(rep.HeapInUse)
		fmt.Fprintf(w, "  heap in use:  min %.1fMB, max %.1fMB, after the first fault round %.1fMB, last %.1fMB\n",
			mb(lo), mb(hi), mb(rep.HeapInUseAfterWarmup), mb(rep.HeapInUseLastInterval))
		fmt.Fprintf(w, "  heap in use over the run (%s):%s\n", "tenths", heapTrend(rep.HeapInUse, 10))
	}
	for _, p := range rep.FaultProblems {
		fmt.Fprintf(w, "  problem:      %s\n", p)
	}
	fmt.Fprintf(w, "violations: %d\n", rep.Violations)
	if rep.Violations > 0 {
		fmt.Fprintf(w, "first violation: %s\n", rep.FirstViolation)
	}
}

func mb(b uint64) float64 { return float64(b) / (1 << 20) }

// heapTrend picks n evenly spaced samples (each the mean of its stretch, so
// a GC cycle does not decide the figure).
func heapTrend(samples []uint64, n int) string {
	n = min(n, len(samples))
	var b strings.Builder
	for i := 0; i < n; i++ {
		lo, hi := i*len(samples)/n, (i+1)*len(samples)/n
		var sum uint64
		for _, v := range samples[lo:hi] {
			sum += v
		}
		fmt.Fprintf(&b, " %.1fMB", mb(sum/uint64(hi-lo)))
	}
	return b.String()
}
