package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	invacache "github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/cmd/invacache/internal/simdb"
	"github.com/halilbulentorhon/invacache-go/cmd/invacache/internal/workload"
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
	// Failover promotes a replica of the channel's master without killing
	// anything (Cluster and Sentinel topologies).
	Failover Kind = "failover"

	// The replay log's faults (Standalone, Cluster and ClusterSharded; see
	// logfaults.go). Trim: a writer with a 1s ReplayWindow and trimming
	// past a node's cursor and while nodes catch up.
	Trim Kind = "trim"
	// RDB: Redis restarted from an RDB snapshot taken a second before.
	RDB Kind = "rdb"
	// OOM: maxmemory with noeviction reached for a few seconds.
	OOM Kind = "oom"
	// XDel: an operator deletes log entries, cursors among them.
	XDel Kind = "xdel"
	// Unlogged: a DisableReplay writer and raw PUBLISHes while a node is away.
	Unlogged Kind = "unlogged"
	// Poison: the log key replaced by a wrong-type key or given a max-id entry.
	Poison Kind = "poison"
)

// LogKinds are the replay log's fault kinds.
var LogKinds = []Kind{Trim, RDB, OOM, XDel, Unlogged, Poison}

// AllKinds is every fault kind. Each topology has its own subset
// (Topology.Kinds), which is also its default rotation.
var AllKinds = append([]Kind{Kill, Cut, Blackhole, Slow, Partition, Failover}, LogKinds...)

// ParseKinds reads a comma-separated list of kinds; "" or "all" returns nil,
// which selects the topology's default rotation.
func ParseKinds(s string) ([]Kind, error) {
	if s == "" || s == "all" {
		return nil, nil
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

	MaxStaleness time.Duration // the nodes' InvalidationConfig.MaxStaleness; default 1s
	// OutageStaleness is the nodes' InvalidationConfig.OutageStaleness (0:
	// off). A read its node served past MaxStaleness is judged against
	// OutageStaleness + PublishWindow + Slack.
	OutageStaleness time.Duration
	PublishWindow   time.Duration // bound: acknowledged message in flight to a live subscriber; default 100ms
	Slack           time.Duration // bound: scheduling noise; default 400ms

	// Topology is the Redis deployment; default Standalone.
	Topology Topology
	// Processes runs every node in its own OS process (the binary
	// re-executed; see NodeProcess) instead of in this one.
	Processes bool
	// Baseline then runs the same workload without faults, on a fresh
	// deployment, for as long as the fault run lasted, and reports both
	// (Report.Baseline).
	Baseline bool
	// AOF runs Redis with an append-only file fsynced on every write, so a
	// killed server restarts with its data.
	AOF bool

	Faults     []Kind        // rotation; default Topology.DefaultKinds
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
	if c.Topology == "" {
		c.Topology = Standalone
	}
	if _, err := ParseTopology(string(c.Topology)); err != nil {
		return err
	}
	if c.Faults == nil {
		c.Faults = c.Topology.DefaultKinds()
	}
	for _, k := range c.Faults {
		if !slices.Contains(c.Topology.Kinds(), k) {
			return fmt.Errorf("chaos: fault kind %q is not available on %s (want %s): %w", k, c.Topology, kindList(c.Topology.Kinds()), ErrInvalidConfig)
		}
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
	case c.OutageStaleness != 0 && c.OutageStaleness < c.MaxStaleness:
		return bad("OutageStaleness", "must be 0 (off) or at least MaxStaleness")
	case c.OutageStaleness != 0 && c.Processes:
		return bad("OutageStaleness", "is not supported with Processes yet (the node processes judge every read against the strict bound)")
	}
	return nil
}

// Report is the outcome of a run. Its fields are plain data, so it can be
// printed as text (Run does) or encoded as JSON.
type Report struct {
	Topology  Topology
	Processes bool // nodes ran in their own OS processes
	AOF       bool
	Elapsed   time.Duration
	Bound     invacachetest.Bound
	Seed      uint64

	Reads, ReadErrors     uint64
	Writes, WriteErrors   uint64 // Writes = acknowledged
	Hits, Misses, Loads   uint64
	NotServingMisses      uint64        // the part of Misses refused while a node could not serve (MaxStaleness, a gap being handled)
	OutageStaleness       time.Duration // the nodes' OutageStaleness (0: off)
	OutageReads           uint64        // reads the nodes served past MaxStaleness, under OutageStaleness (summed over nodes)
	OutageJudged          uint64        // reads judged against OutageStaleness + publish window + slack (whole bursts around OutageReads)
	Gaps, ClearsOnGap     uint64
	PublishFailures       uint64
	Faults                map[Kind]int               // injected, by kind
	ClearsByKind          map[Kind]uint64            // whole-cache clears (summed over nodes) from a fault's injection to its recovery
	GapsByKind            map[Kind]uint64            // gaps (summed over nodes) in the same windows
	CatchUpsByKind        map[Kind]uint64            // gaps caught up from the replay log, without a clear, in the same windows
	ReasonsByKind         map[Kind]map[string]uint64 // whole-cache clears by reason (as ClearsByReason) in the same windows
	NotServingByKind      map[Kind]uint64            // lookups refused because their node could not serve, in the same windows
	CatchUps              uint64                     // gaps caught up from the replay log (summed over nodes)
	KeysReplayed          uint64                     // keys invalidated from replayed log entries
	ClearsByReason        map[string]uint64          // whole-cache clears by reason (invacache.ClearReasons), summed over nodes
	SlowDrops             int                        // slow faults where Redis dropped the subscriber
	FaultProblems         []string                   // faults whose effect could not be verified, or no recovery
	MaxStalenessObserved  time.Duration
	Violations            uint64
	FirstViolation        string
	GoroutinesBaseline    int
	GoroutinesPerCycle    []int // after each fault, once every node recovered
	GoroutinesAfterClose  int
	HeapInUse             []uint64 // bytes, one per report interval
	HeapInUseAfterWarmup  uint64   // first sample after the first fault cycle
	HeapInUseLastInterval uint64

	// Baseline is the fault-free run of the same length (Config.Baseline),
	// nil without one.
	Baseline *Report
}

// ClearsOutsideFaults are the clears not in any fault's window (e.g. the
// first subscription).
func (r *Report) ClearsOutsideFaults() uint64 {
	var in uint64
	for _, c := range r.ClearsByKind {
		in += c
	}
	if in > r.ClearsOnGap {
		return 0
	}
	return r.ClearsOnGap - in
}

// HitRatio is Hits/(Hits+Misses), 0 without lookups.
func (r *Report) HitRatio() float64 {
	if r.Hits+r.Misses == 0 {
		return 0
	}
	return float64(r.Hits) / float64(r.Hits+r.Misses)
}

// ServingHitRatio is the hit ratio of the lookups made while the node could
// serve: what clears and invalidations cost, without the lookups the
// staleness rule refused. 0 without such lookups.
func (r *Report) ServingHitRatio() float64 {
	served := r.Hits + r.Misses - min(r.NotServingMisses, r.Misses)
	if served == 0 {
		return 0
	}
	return float64(r.Hits) / float64(served)
}

// node is one cache replica and its link.
type node struct {
	id    int
	cache invacache.Cache[uint64] // nil for a node process
	proc  *procNode               // nil for a node in this process
	proxy *faultproxy.Proxy       // Standalone only
	cnt   workload.Counters       // this node's readers and writers (a node process's as last reported)
}

// stats is the node's cache's Stats (a node process's as last reported).
func (n *node) stats() invacache.Stats {
	if n.proc != nil {
		st, _ := n.proc.stats()
		return st
	}
	return n.cache.Stats()
}

// waiting is the number of this node's writes not yet acknowledged (its
// writers wait in Flush).
func (n *node) waiting() int64 {
	return int64(n.cnt.Sets.Load()+n.cnt.Deletes.Load()) - int64(n.cnt.Acks.Load()+n.cnt.Aborted.Load())
}

// run is the state of one Run.
type run struct {
	cfg   Config
	w     io.Writer
	srv   *redisserver.Server   // Standalone
	cl    *redisserver.Cluster  // Cluster, ClusterSharded
	st    *redisserver.Sentinel // Sentinel
	nodes []*node
	db    *simdb.DB
	dbs   *dbServer    // Processes: serves db to the node processes
	judge *remoteJudge // Processes: the node processes' reads to chk
	chk   *invacachetest.Checker
	// outageJudged counts the reads judged against the outage bound.
	outageJudged atomic.Uint64
	start        time.Time
	channel      string

	mu     sync.Mutex // guards rep's fault fields and serializes output lines
	rep    Report
	faultN int // faults injected so far
}

const channel = "invacache:chaos"

// zipf is the key popularity exponent of readers and writers.
const zipf = 1.1

// keyPrefix names the database's keys.
const keyPrefix = "key:"

// Run performs a chaos run, printing progress to w, and returns its report.
// With cfg.Baseline it then runs the same workload without faults, on a
// fresh deployment, for as long as the fault run actually lasted (a fault
// cycle may run past Duration: a Sentinel kill takes 15-25s), and reports it
// in Report.Baseline. It returns an error when the setup fails or ctx ends
// before the run is over; violations are in the report (Report.Violations,
// and Report.Baseline.Violations), not an error.
func Run(ctx context.Context, cfg Config, w io.Writer) (*Report, error) {
	if err := cfg.resolve(); err != nil {
		return nil, err
	}
	if cfg.Baseline {
		fmt.Fprintf(w, "== with faults\n")
	}
	rep, err := runPhase(ctx, cfg, w)
	if err != nil || !cfg.Baseline {
		return rep, err
	}
	bc := cfg
	bc.Faults = []Kind{}
	bc.Duration = max(rep.Elapsed.Round(100*time.Millisecond), 5*time.Second)
	fmt.Fprintf(w, "\n== baseline: the same workload without faults for %.1fs (the fault run's length), on a fresh deployment\n", bc.Duration.Seconds())
	base, err := runPhase(ctx, bc, w)
	rep.Baseline = base
	if base != nil {
		printComparison(w, rep, base)
	}
	return rep, err
}

// runPhase is one run on a fresh deployment (no faults when cfg.Faults is
// empty).
func runPhase(ctx context.Context, cfg Config, w io.Writer) (*Report, error) {
	r := &run{cfg: cfg, w: w, channel: channel}
	r.rep.Topology, r.rep.Processes, r.rep.AOF = cfg.Topology, cfg.Processes, cfg.AOF
	r.rep.Seed = cfg.Seed
	r.rep.Faults = map[Kind]int{}
	r.rep.ClearsByKind = map[Kind]uint64{}
	r.rep.GapsByKind = map[Kind]uint64{}
	r.rep.CatchUpsByKind = map[Kind]uint64{}
	r.rep.ReasonsByKind = map[Kind]map[string]uint64{}
	r.rep.NotServingByKind = map[Kind]uint64{}
	r.rep.Bound = invacachetest.Bound{MaxStaleness: cfg.MaxStaleness, PublishWindow: cfg.PublishWindow, Slack: cfg.Slack}
	r.rep.OutageStaleness = cfg.OutageStaleness
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
	if err := r.startRedis(); err != nil {
		return err
	}
	r.db = simdb.New(keyPrefix, r.cfg.Keys, r.cfg.DBLatency)
	r.chk = invacachetest.NewChecker(r.rep.Bound)
	if r.cfg.Processes {
		dbs, err := serveDB(r.db)
		if err != nil {
			return err
		}
		r.dbs = dbs
		r.judge = newRemoteJudge(r.chk, r.rep.Bound.Total(), r.cfg.Nodes)
	}
	capacity := max(2*r.cfg.Keys, 1024)
	for i := 0; i < r.cfg.Nodes; i++ {
		n := &node{id: i}
		r.nodes = append(r.nodes, n)
		proxyAddr := ""
		if r.srv != nil {
			p, err := faultproxy.New(r.srv.Addr())
			if err != nil {
				return fmt.Errorf("chaos: node %d proxy: %w", i, err)
			}
			n.proxy = p
			proxyAddr = p.Addr() // each node dials its own proxy: its own hub, its own connections
		}
		rc := r.redisConfig(i, proxyAddr)
		if r.cfg.Processes {
			p, err := startProc(nodeSpec{ID: i, Redis: rc, MaxStaleness: r.cfg.MaxStaleness, Capacity: capacity,
				DBAddr: r.dbs.addr(), Keys: r.cfg.Keys, Readers: r.cfg.ReadersPerNode, Writers: r.cfg.WritersPerNode,
				ReadRate: r.cfg.ReadRate, WriteRate: r.cfg.WriteRate, Seed: r.cfg.Seed, NoBroadcast: r.cfg.NoBroadcast,
				Verbose: r.cfg.Logger != nil}, n, r.judge)
			if err != nil {
				return err
			}
			n.proc = p
			continue
		}
		c, err := invacache.NewCache[uint64](nodeCacheConfig(rc, r.cfg.MaxStaleness, r.cfg.OutageStaleness, capacity, r.cfg.Logger))
		if err != nil {
			return fmt.Errorf("chaos: node %d: %w", i, err)
		}
		n.cache = c
	}
	if err := r.waitRecovered(30 * time.Second); err != nil {
		return fmt.Errorf("chaos: nodes did not subscribe: %w", err)
	}
	return nil
}

// stopNodes ends the node processes (their workload first) and reports
// what went wrong.
func (r *run) stopNodes() {
	for _, n := range r.nodes {
		if n.proc == nil {
			continue
		}
		if err := n.proc.stop(15 * time.Second); err != nil {
			r.rep.FaultProblems = append(r.rep.FaultProblems, fmt.Sprintf("node process %d: %v", n.id, err))
		}
	}
	if r.judge != nil {
		r.judge.drain()
	}
}

func (r *run) teardown() {
	for _, n := range r.nodes {
		if n.cache != nil {
			n.cache.Close()
		}
		if n.proc != nil && n.proc.cmd.ProcessState == nil {
			n.proc.stop(5 * time.Second)
		}
	}
	for _, n := range r.nodes {
		if n.proxy != nil {
			n.proxy.Close()
		}
	}
	if r.dbs != nil {
		r.dbs.close()
	}
	r.stopRedis()
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
	where := "in this process"
	if cfg.Processes {
		where = "each in its own OS process"
	}
	aof := ""
	if cfg.AOF {
		aof = ", Redis with AOF (appendfsync always)"
	}
	fmt.Fprintf(r.w, "invacache chaos: %d nodes (%s) over %s%s, channel %q, seed %d\n",
		cfg.Nodes, where, r.describeRedis(), aof, r.channel, cfg.Seed)
	fmt.Fprintf(r.w, "workload: %d keys (zipf 1.1); %d readers/node at %d reads/s (GetOrLoad from the database); %d writers/node at up to %d writes/s (database write, then Set+WithInvalidation or Delete+WithDeleteInvalidation, then Flush = acknowledged)\n",
		cfg.Keys, cfg.ReadersPerNode, cfg.ReadRate, cfg.WritersPerNode, cfg.WriteRate)
	if cfg.NoBroadcast {
		fmt.Fprintln(r.w, "NO BROADCAST: writers update only their own cache (negative control: the check must count stale reads)")
	}
	if len(cfg.Faults) == 0 {
		fmt.Fprintf(r.w, "faults: none, for %v\n", cfg.Duration)
	} else {
		fmt.Fprintf(r.w, "faults: %s in rotation, %v apart, for %v\n", kindList(cfg.Faults), cfg.FaultPause, cfg.Duration)
	}
	fmt.Fprintf(r.w, "bound: %s\n", r.rep.Bound)
	fmt.Fprintf(r.w, "  (a read that started at t and returned version v is a violation if a newer version was acknowledged before t - %v)\n\n", r.rep.Bound.Total())
	fmt.Fprintf(r.w, "%7s %8s %8s %6s %7s %6s %6s %5s %10s %9s\n", "time", "reads/s", "writes/s", "hit%", "serving", "gaps", "viol", "faults", "goroutines", "heap")

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	r.start = time.Now()
	var wg sync.WaitGroup
	for _, n := range r.nodes {
		if n.proc != nil {
			if err := n.proc.start(); err != nil {
				return fmt.Errorf("chaos: start node process %d's workload: %w", n.id, err)
			}
			continue
		}
		for i := 0; i < cfg.ReadersPerNode; i++ {
			rd := workload.Reader{Cache: n.cache, DB: r.db, Check: r.chk, Counters: &n.cnt,
				Rate: cfg.ReadRate, Zipf: zipf, Seed: cfg.Seed + uint64(n.id*100+i)}
			if cfg.OutageStaleness > 0 {
				c := n.cache
				rd.Outage = &workload.OutageBound{
					Bound:  r.outageBound(),
					Reads:  func() uint64 { return c.Stats().Invalidation.OutageReads },
					Judge:  r.chk.ReadWithin,
					Judged: &r.outageJudged,
				}
			}
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
	r.stopNodes()
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
	if len(r.cfg.Faults) == 0 {
		sleepCtx(ctx, time.Until(end))
		return nil
	}
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
		c0 := r.totals()
		desc, problem := r.inject(ctx, kind, round, target)
		if ctx.Err() != nil {
			return nil
		}
		recErr := r.waitRecovered(15 * time.Second)
		g := runtime.NumGoroutine()
		c1 := r.totals()
		r.mu.Lock()
		r.faultN++
		r.rep.Faults[kind]++
		r.rep.ClearsByKind[kind] += c1.clears - c0.clears
		r.rep.GapsByKind[kind] += c1.gaps - c0.gaps
		r.rep.CatchUpsByKind[kind] += c1.catchUps - c0.catchUps
		r.rep.NotServingByKind[kind] += c1.notServing - c0.notServing
		reasons := c1.reasonsSince(c0)
		if r.rep.ReasonsByKind[kind] == nil {
			r.rep.ReasonsByKind[kind] = map[string]uint64{}
		}
		for k, v := range reasons {
			r.rep.ReasonsByKind[kind][k] += v
		}
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
		fmt.Fprintf(r.w, "%6.1fs  fault %-9s #%d: %s; %s after %v; clears %d%s, catch-ups %d, not-serving misses %d; goroutines %d\n",
			t0.Sub(r.start).Seconds(), kind, r.rep.Faults[kind], desc, status, time.Since(t0).Round(time.Millisecond), c1.clears-c0.clears, reasonList(reasons, " (", ")"),
			c1.catchUps-c0.catchUps, c1.notServing-c0.notServing, g)
		r.mu.Unlock()
	}
}

// counts are the nodes' summed counters that a fault's window is charged.
type counts struct {
	clears, gaps, catchUps, notServing uint64
	reasons                            map[string]uint64 // clears by reason
}

// reasonsSince is the clears by reason since c0.
func (c counts) reasonsSince(c0 counts) map[string]uint64 {
	d := map[string]uint64{}
	for k, v := range c.reasons {
		if v > c0.reasons[k] {
			d[k] = v - c0.reasons[k]
		}
	}
	return d
}

// reasonList prints clears by reason, sorted ("reason n, ..."), between pre
// and post; "" when there is none.
func reasonList(m map[string]uint64, pre, post string) string {
	if len(m) == 0 {
		return ""
	}
	var rs []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		rs = append(rs, fmt.Sprintf("%s %d", k, m[k]))
	}
	return pre + strings.Join(rs, ", ") + post
}

// totals sums the nodes' whole-cache clears, gaps, catch-ups and
// not-serving misses.
func (r *run) totals() counts {
	c := counts{reasons: map[string]uint64{}}
	for _, n := range r.nodes {
		st := n.stats()
		for k, v := range st.Invalidation.ClearsByReason {
			c.reasons[k] += v
		}
		c.clears += st.Invalidation.ClearsOnGap
		c.gaps += st.Invalidation.Gaps
		c.catchUps += st.Invalidation.CatchUps
		c.notServing += st.NotServingMisses
	}
	return c
}

// waitRecovered polls until every node is subscribed and serving.
func (r *run) waitRecovered(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		down := 0
		for _, n := range r.nodes {
			st := n.stats().Invalidation
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
	notServing           uint64
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
		st := n.stats()
		s.hits += st.Hits
		s.misses += st.Misses
		s.notServing += st.NotServingMisses
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
	r.rep.NotServingMisses = s.notServing
	r.rep.Gaps, r.rep.ClearsOnGap = s.gaps, s.clearsOnGap
	r.rep.ClearsByReason = map[string]uint64{}
	for _, n := range r.nodes {
		st := n.stats().Invalidation
		r.rep.CatchUps += st.CatchUps
		r.rep.KeysReplayed += st.KeysReplayed
		for reason, c := range st.ClearsByReason {
			r.rep.ClearsByReason[reason] += c
		}
	}
	for _, n := range r.nodes {
		r.rep.OutageReads += n.stats().Invalidation.OutageReads
	}
	r.rep.OutageJudged = r.outageJudged.Load()
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
	fmt.Fprintf(w, "  not serving:  %d lookups missed because their node could not serve (%.1f%% of lookups); hit ratio of the others %.1f%%\n",
		rep.NotServingMisses, 100*safeDiv(float64(rep.NotServingMisses), float64(rep.Hits+rep.Misses)), 100*rep.ServingHitRatio())
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
	if total > 0 {
		fmt.Fprintf(w, "  faults:       %d injected: %s\n", total, strings.Join(parts, ", "))
	} else {
		fmt.Fprintf(w, "  faults:       none\n")
	}
	fmt.Fprintf(w, "  gaps:         %d possible losses detected, %d caught up from the replay log (%d keys replayed), %d cache clears because of them\n",
		rep.Gaps, rep.CatchUps, rep.KeysReplayed, rep.ClearsOnGap)
	if len(rep.ClearsByReason) > 0 {
		fmt.Fprintf(w, "  clears by reason: %s\n", reasonList(rep.ClearsByReason, "", ""))
	}
	if total > 0 {
		var cl []string
		for _, k := range r.cfg.Faults {
			cl = append(cl, fmt.Sprintf("%s %d (catch-ups %d)", k, rep.ClearsByKind[k], rep.CatchUpsByKind[k]))
		}
		fmt.Fprintf(w, "  clears by fault kind (whole-cache clears summed over nodes, from injection to recovery): %s; outside fault windows %d\n",
			strings.Join(cl, ", "), rep.ClearsOutsideFaults())
		var ns []string
		var in uint64
		for _, k := range r.cfg.Faults {
			ns = append(ns, fmt.Sprintf("%s %d", k, rep.NotServingByKind[k]))
			in += rep.NotServingByKind[k]
		}
		fmt.Fprintf(w, "  not-serving misses by fault kind (same windows): %s; outside fault windows %d\n",
			strings.Join(ns, ", "), rep.NotServingMisses-min(in, rep.NotServingMisses))
		fmt.Fprintf(w, "  per fault kind (same windows):\n")
		for _, k := range r.cfg.Faults {
			fmt.Fprintf(w, "    %-9s faults %d, catch-ups %d, clears %d%s\n", k, rep.Faults[k], rep.CatchUpsByKind[k], rep.ClearsByKind[k], reasonList(rep.ReasonsByKind[k], " (", ")"))
		}
	}
	fmt.Fprintf(w, "  bound:        %s\n", rep.Bound)
	if rep.OutageStaleness > 0 {
		ob := rep.Bound
		ob.MaxStaleness = rep.OutageStaleness
		fmt.Fprintf(w, "  outage bound: %s (reads a node served past MaxStaleness while Redis was unreachable)\n", ob)
		fmt.Fprintf(w, "  reads by bound: %d judged against the strict bound, %d against the outage bound (the nodes served %d reads past MaxStaleness)\n",
			rep.Reads-min(rep.OutageJudged, rep.Reads), rep.OutageJudged, rep.OutageReads)
	}
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

// printComparison sets the fault run against the fault-free baseline.
func printComparison(w io.Writer, rep, base *Report) {
	fmt.Fprintf(w, "\nagainst the fault-free baseline of the same length:\n")
	fmt.Fprintf(w, "  %-22s %12s %12s\n", "", "baseline", "with faults")
	fmt.Fprintf(w, "  %-22s %12d %12d\n", "reads", base.Reads, rep.Reads)
	fmt.Fprintf(w, "  %-22s %11.1f%% %11.1f%%   (%.3f of baseline)\n", "hit ratio", 100*base.HitRatio(), 100*rep.HitRatio(), safeDiv(rep.HitRatio(), base.HitRatio()))
	fmt.Fprintf(w, "  %-22s %11.1f%% %11.1f%%   (%.3f of baseline)\n", "  while serving", 100*base.ServingHitRatio(), 100*rep.ServingHitRatio(), safeDiv(rep.ServingHitRatio(), base.ServingHitRatio()))
	fmt.Fprintf(w, "  %-22s %12d %12d\n", "not-serving misses", base.NotServingMisses, rep.NotServingMisses)
	fmt.Fprintf(w, "  %-22s %12d %12d   (%.2fx)\n", "database loads", base.Loads, rep.Loads, safeDiv(float64(rep.Loads), float64(base.Loads)))
	fmt.Fprintf(w, "  %-22s %12d %12d\n", "whole-cache clears", base.ClearsOnGap, rep.ClearsOnGap)
	fmt.Fprintf(w, "  %-22s %12d %12d\n", "catch-ups", base.CatchUps, rep.CatchUps)
	fmt.Fprintf(w, "  %-22s %12d %12d\n", "reads past MaxStaleness", base.OutageReads, rep.OutageReads)
	fmt.Fprintf(w, "  %-22s %12d %12d\n", "violations", base.Violations, rep.Violations)
}

// outageBound is the bound a read served under OutageStaleness is judged
// against: the strict bound with OutageStaleness for MaxStaleness.
func (r *run) outageBound() time.Duration {
	b := r.rep.Bound
	b.MaxStaleness = r.cfg.OutageStaleness
	return b.Total()
}

func safeDiv(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
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
