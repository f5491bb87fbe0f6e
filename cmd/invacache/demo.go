package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	invacache "github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/cmd/invacache/internal/simdb"
	"github.com/halilbulentorhon/invacache-go/cmd/invacache/internal/workload"
	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/faultproxy"
	"github.com/halilbulentorhon/invacache-go/invacachetest"
)

type demoOptions struct {
	nodes, keys, readers, writers int
	readRate, writeRate           int // per reader / per writer, per second
	deleteShare, zipf             float64
	duration, interval, dbLatency time.Duration
	fault                         bool
	faultMode                     string
	faultAt, faultFor             time.Duration
	maxStaleness                  time.Duration
	publishWindow, slack          time.Duration
	verbose, broadcast            bool
	metricsAddr                   string
}

func demoCommand() command {
	return command{
		name:    "demo",
		summary: "run several cache nodes over a simulated database and show invalidation at work (embedded Redis by default)",
		usage:   "[--redis ADDR] [--nodes N] [--duration D] [--fault] [flags]",
		setup: func(fs *flag.FlagSet, e *env) func(context.Context, []string) error {
			cf := addCommonFlags(fs, "Redis `address` (host:port) to use instead of the embedded Redis-protocol server")
			var o demoOptions
			fs.IntVar(&o.nodes, "nodes", 3, "cache nodes (each with its own driver and connections)")
			fs.IntVar(&o.keys, "keys", 1000, "keys in the simulated database")
			fs.IntVar(&o.readers, "readers", 2, "reader goroutines per node")
			fs.IntVar(&o.writers, "writers", 2, "writer goroutines in total, spread over the nodes")
			fs.IntVar(&o.readRate, "read-rate", 2000, "reads per second per reader")
			fs.IntVar(&o.writeRate, "write-rate", 100, "writes per second per writer")
			fs.Float64Var(&o.deleteShare, "delete-share", 0.5, "share of writes that Delete (WithDeleteInvalidation) instead of Set (WithInvalidation)")
			fs.Float64Var(&o.zipf, "zipf", 1.1, "zipf exponent of key popularity (> 1)")
			fs.DurationVar(&o.duration, "duration", 15*time.Second, "how long the workload runs")
			fs.DurationVar(&o.interval, "interval", time.Second, "report interval")
			fs.DurationVar(&o.dbLatency, "db-latency", time.Millisecond, "simulated database read latency")
			fs.BoolVar(&o.fault, "fault", false, "stop the bus mid-run and restart it, to show recovery")
			fs.StringVar(&o.faultMode, "fault-mode", "stop", "with --fault: \"stop\" (server gone: connections reset; on reconnect nodes catch up from the replay log, or clear if it was lost) or \"blackhole\" (silent partition: MaxStaleness stops serving)")
			fs.DurationVar(&o.faultAt, "fault-at", 0, "with --fault: when the bus stops (default duration/3)")
			fs.DurationVar(&o.faultFor, "fault-for", 0, "with --fault: how long it stays down (default duration/3)")
			fs.DurationVar(&o.maxStaleness, "max-staleness", 0, "the nodes' MaxStaleness (default: the config file's, else 2s)")
			fs.DurationVar(&o.publishWindow, "publish-window", 100*time.Millisecond, "stale-read bound: time an acknowledged invalidation may still be in flight to a live peer")
			fs.DurationVar(&o.slack, "slack", 500*time.Millisecond, "stale-read bound: allowance for scheduling noise")
			fs.BoolVar(&o.verbose, "verbose", false, "log the library's warnings to stderr")
			fs.StringVar(&o.metricsAddr, "metrics-addr", "", "serve Prometheus metrics of the nodes (label name=\"node0\", ...) at http://`HOST:PORT`/metrics while the demo runs (port 0: any free port, printed)")
			fs.BoolVar(&o.broadcast, "broadcast", true, "writers broadcast their writes; --broadcast=false writes only the writer's own cache, to show what the stale-read check catches without invalidation")
			return func(ctx context.Context, args []string) error {
				if len(args) > 0 {
					return usagef("unexpected argument %q", args[0])
				}
				if err := o.validate(); err != nil {
					return err
				}
				s, err := cf.resolve()
				if err != nil {
					return err
				}
				return runDemo(ctx, e, s, o)
			}
		},
	}
}

func (o *demoOptions) validate() error {
	switch {
	case o.nodes < 2:
		return usagef("--nodes: need at least 2 nodes, got %d", o.nodes)
	case o.keys < 1:
		return usagef("--keys: need at least 1 key, got %d", o.keys)
	case o.readers < 0:
		return usagef("--readers: %d is negative", o.readers)
	case o.writers < 0:
		return usagef("--writers: %d is negative", o.writers)
	case o.readRate < 1:
		return usagef("--read-rate: %d, want at least 1 per second", o.readRate)
	case o.writeRate < 1:
		return usagef("--write-rate: %d, want at least 1 per second", o.writeRate)
	case o.deleteShare < 0 || o.deleteShare > 1:
		return usagef("--delete-share: %v is not between 0 and 1", o.deleteShare)
	case o.zipf <= 1:
		return usagef("--zipf: %v must be greater than 1", o.zipf)
	case o.duration <= 0:
		return usagef("--duration: %v is not positive", o.duration)
	case o.interval <= 0:
		return usagef("--interval: %v is not positive", o.interval)
	case o.maxStaleness < 0:
		return usagef("--max-staleness: %v is negative", o.maxStaleness)
	case o.publishWindow < 0:
		return usagef("--publish-window: %v is negative", o.publishWindow)
	case o.slack < 0:
		return usagef("--slack: %v is negative", o.slack)
	case o.dbLatency < 0:
		return usagef("--db-latency: %v is negative", o.dbLatency)
	case o.faultMode != "stop" && o.faultMode != "blackhole":
		return usagef("--fault-mode: %q is not \"stop\" or \"blackhole\"", o.faultMode)
	}
	if o.metricsAddr != "" {
		if _, _, err := net.SplitHostPort(o.metricsAddr); err != nil {
			return usagef("--metrics-addr: %q is not HOST:PORT: %v", o.metricsAddr, err)
		}
	}
	if o.fault {
		if o.faultAt == 0 {
			o.faultAt = o.duration / 3
		}
		if o.faultFor == 0 {
			o.faultFor = o.duration / 3
		}
		if o.faultAt <= 0 || o.faultFor <= 0 || o.faultAt+o.faultFor >= o.duration {
			return usagef("--fault-at/--fault-for: the fault (%v for %v) must end before --duration %v", o.faultAt, o.faultFor, o.duration)
		}
	}
	return nil
}

// demoBus is the Redis the nodes talk to and, with --fault, the switch that
// takes it away.
type demoBus struct {
	desc      string // for the header
	nodeAddr  string // what the nodes dial
	stop      func() error
	restart   func() error
	stopDesc  string
	closeFunc []func()
}

func (b *demoBus) close() {
	for i := len(b.closeFunc) - 1; i >= 0; i-- {
		b.closeFunc[i]()
	}
}

func openDemoBus(ctx context.Context, s settings, o demoOptions) (*demoBus, error) {
	b := &demoBus{}
	var mr *miniredis.Miniredis
	if s.hasRedis() {
		if len(s.redis.Addresses) > 0 && o.fault {
			return nil, usagef("--fault needs a single --redis address")
		}
		c, err := connect(ctx, s)
		if err != nil {
			return nil, err
		}
		c.Close()
		b.desc = "Redis at " + s.addrString()
		b.nodeAddr = s.redis.Address
	} else {
		mr = miniredis.NewMiniRedis()
		if s.redis.Password != "" {
			if s.redis.Username != "" {
				mr.RequireUserAuth(s.redis.Username, s.redis.Password)
			} else {
				mr.RequireAuth(s.redis.Password)
			}
		}
		if err := mr.StartAddr("127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("embedded Redis: %w", err)
		}
		b.closeFunc = append(b.closeFunc, mr.Close)
		b.desc = "the embedded Redis-protocol server (miniredis) at " + mr.Addr()
		b.nodeAddr = mr.Addr()
	}
	if !o.fault {
		return b, nil
	}
	if mr != nil && o.faultMode == "stop" {
		b.stopDesc = "embedded server closed"
		b.stop = func() error { mr.Close(); return nil }
		b.restart = mr.Restart
		return b, nil
	}
	// A real server is not ours to stop, and a blackhole needs a link in
	// the middle: the nodes connect through a fault proxy.
	p, err := faultproxy.New(b.nodeAddr)
	if err != nil {
		b.close()
		return nil, fmt.Errorf("fault proxy: %w", err)
	}
	b.closeFunc = append(b.closeFunc, func() { p.Close() })
	b.desc += " through a fault proxy at " + p.Addr()
	b.nodeAddr = p.Addr()
	if o.faultMode == "stop" {
		b.stopDesc = "proxy refuses new connections and resets the open ones"
		b.stop = func() error { p.Refuse(); p.Cut(); return nil }
		b.restart = func() error { p.Accept(); return nil }
	} else {
		b.stopDesc = "proxy blackholes every link (no FIN, no RST: silence)"
		b.stop = func() error { p.Blackhole(); return nil }
		b.restart = func() error { p.Heal(); return nil }
	}
	return b, nil
}

// demoNode is one cache replica.
type demoNode struct {
	cache  invacache.Cache[uint64]
	driver *nodeDriver
	tap    *tap
}

// propagation pairs a write with the peers dropping its key.
type propagation struct {
	mu      sync.Mutex
	started map[string]time.Time // guarded by mu; latest write start per key
	win     samples              // this report interval
	all     samples              // whole run
}

func (p *propagation) mark(key string, at time.Time) {
	p.mu.Lock()
	p.started[key] = at
	p.mu.Unlock()
}

func (p *propagation) dropped(keys []string, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, k := range keys {
		if t0, ok := p.started[k]; ok {
			p.win.add(at.Sub(t0))
			p.all.add(at.Sub(t0))
		}
	}
}

func runDemo(ctx context.Context, e *env, s settings, o demoOptions) error {
	var metricsLn net.Listener
	if o.metricsAddr != "" {
		ln, err := listenMetrics(o.metricsAddr)
		if err != nil {
			return err
		}
		metricsLn = ln
		defer ln.Close()
	}
	bus, err := openDemoBus(ctx, s, o)
	if err != nil {
		return err
	}
	defer bus.close()

	logger := discardLogger()
	if o.verbose {
		logger = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	quietRedisLog(logger)
	cfg := s.cache
	cfg.Logger = logger
	inv := config.InvalidationConfig{}
	if s.cache.Invalidation != nil {
		inv = *s.cache.Invalidation
	}
	inv.Type, inv.DriverConfig, inv.Redis = "", nil, nil
	switch {
	case o.maxStaleness > 0:
		inv.MaxStaleness = o.maxStaleness
	case inv.MaxStaleness == 0:
		inv.MaxStaleness = 2 * time.Second
	}
	bound := invacachetest.Bound{MaxStaleness: inv.MaxStaleness, PublishWindow: o.publishWindow, Slack: o.slack}
	if inv.DisableMaxStaleness {
		bound.MaxStaleness = 0
	}
	if cfg.Backend == nil {
		cfg.Backend = &config.BackendConfig{InMemory: &config.InMemoryConfig{Capacity: max(2*o.keys, 1024)}}
	}

	rc := s.redis
	rc.Address, rc.Addresses = bus.nodeAddr, nil
	if len(s.redis.Addresses) > 0 && !o.fault {
		rc.Address, rc.Addresses = "", s.redis.Addresses
	}
	if rc.Address != s.redis.Address && s.hasRedis() && rc.TLS != nil && rc.TLS.ServerName == "" {
		// Through the fault proxy the dialed host is the proxy's: verify
		// the certificate against the real server's name.
		t := *rc.TLS
		t.ServerName, _, _ = net.SplitHostPort(s.redis.Address)
		rc.TLS = &t
	}
	prop := &propagation{started: map[string]time.Time{}}
	nodes := make([]*demoNode, 0, o.nodes)
	defer func() {
		for _, n := range nodes {
			n.cache.Close()
			n.driver.Close()
		}
	}()
	for i := 0; i < o.nodes; i++ {
		d, err := openNodeDriver(rc, logger)
		if err != nil {
			return fmt.Errorf("node %d: %w", i, err)
		}
		t := newTap(d, prop.dropped)
		nc := cfg
		ic := inv
		ic.Driver = t
		nc.Invalidation = &ic
		c, err := invacache.NewCache[uint64](nc)
		if err != nil {
			d.Close()
			return fmt.Errorf("node %d: %w", i, err)
		}
		nodes = append(nodes, &demoNode{cache: c, driver: d, tap: t})
	}
	wait := rc.DialTimeout
	if wait <= 0 {
		wait = 5 * time.Second
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	for _, n := range nodes {
		if err := n.tap.waitUp(wctx); err != nil {
			cancel()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("cannot reach Redis at %s: subscription not established within %v", s.addrString(), wait)
		}
	}
	cancel()

	metricsURL := ""
	if metricsLn != nil {
		ms, err := serveDemoMetrics(metricsLn, nodes)
		if err != nil {
			return err
		}
		defer ms.close()
		metricsURL = ms.url
	}

	db := simdb.New("item:", o.keys, o.dbLatency)
	checker := invacachetest.NewChecker(bound)
	var cnt workload.Counters

	w := e.stdout
	fmt.Fprintf(w, "invacache demo: %d nodes over %s, channel %q\n", o.nodes, bus.desc, rc.Channel)
	fmt.Fprintf(w, "workload: %d keys (zipf %.2f); %d readers/node at %d reads/s (GetOrLoad from the database); %d writers at %d writes/s (database write, then %.0f%% Set+WithInvalidation / %.0f%% Delete+WithDeleteInvalidation, then Flush = acknowledged)\n",
		o.keys, o.zipf, o.readers, o.readRate, o.writers, o.writeRate, 100*(1-o.deleteShare), 100*o.deleteShare)
	fmt.Fprintf(w, "stale-read bound: %s (a read is stale if a newer version was acknowledged more than the bound before the read started)\n", bound)
	fmt.Fprintln(w, "propagation: writer's Set/Delete call -> a peer's subscription handler has dropped the key (one sample per peer)")
	if !o.broadcast {
		fmt.Fprintln(w, "--broadcast=false: writers do NOT broadcast; peers keep old versions and the check counts them")
	}
	if o.fault {
		fmt.Fprintf(w, "fault: at %v the bus stops (%s) for %v\n", o.faultAt, bus.stopDesc, o.faultFor)
	}
	if metricsURL != "" {
		fmt.Fprintf(w, "metrics: %s (Prometheus text format, one name label per node)\n", metricsURL)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%7s %6s %8s %7s %8s %6s %6s %9s %9s %6s %5s %7s\n", "time", "hit%", "reads/s", "loads/s", "writes/s", "sent/s", "recv/s", "prop p50", "prop p99", "stale", "links", "serving")

	runCtx, stopRun := context.WithTimeout(ctx, o.duration)
	defer stopRun()
	var wg sync.WaitGroup
	for ni, n := range nodes {
		for r := 0; r < o.readers; r++ {
			wg.Add(1)
			rd := workload.Reader{Cache: n.cache, DB: db, Check: checker, Counters: &cnt,
				Rate: o.readRate, Zipf: o.zipf, Seed: uint64(ni*1000 + r + 1)}
			go func() {
				defer wg.Done()
				rd.Run(runCtx)
			}()
		}
	}
	for wi := 0; wi < o.writers; wi++ {
		n := nodes[wi%len(nodes)]
		wg.Add(1)
		wr := workload.Writer{Cache: n.cache, DB: db, Check: checker, Counters: &cnt,
			Rate: o.writeRate, Zipf: o.zipf, Seed: uint64(1_000_000 + wi),
			DeleteShare: o.deleteShare, NoBroadcast: !o.broadcast,
			BeforeCacheWrite: func(key string) { prop.mark(key, time.Now()) }}
		go func() {
			defer wg.Done()
			wr.Run(runCtx)
		}()
	}

	start := time.Now()
	tick := time.NewTicker(o.interval)
	defer tick.Stop()
	var faultStop, faultRestart <-chan time.Time
	if o.fault {
		faultStop = time.After(o.faultAt)
		faultRestart = time.After(o.faultAt + o.faultFor)
	}
	// The nodes' first link up counts as a gap in their stats: report
	// what happened during the run only.
	base := takeSnapshot(nodes, &cnt, checker)
	prev := base
	prev.at = start
	linkUpsBeforeFault := uint64(0)
	var faultErr error
loop:
	for {
		select {
		case <-runCtx.Done():
			break loop
		case <-faultStop:
			for _, n := range nodes {
				linkUpsBeforeFault += n.tap.linkUps.Load()
			}
			if err := bus.stop(); err != nil && faultErr == nil {
				faultErr = err
			}
			fmt.Fprintf(w, "%6.1fs  -- fault: bus stopped (%s)\n", time.Since(start).Seconds(), bus.stopDesc)
		case <-faultRestart:
			if err := bus.restart(); err != nil && faultErr == nil {
				faultErr = err
			}
			fmt.Fprintf(w, "%6.1fs  -- fault: bus back; nodes resubscribe and catch up from the replay log (or clear) before serving again\n", time.Since(start).Seconds())
		case <-tick.C:
			cur := takeSnapshot(nodes, &cnt, checker)
			printDemoRow(w, start, prev, cur, prop.win.take())
			prev = cur
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	final := takeSnapshot(nodes, &cnt, checker)
	if final.at.Sub(prev.at) > o.interval/4 {
		printDemoRow(w, start, prev, final, prop.win.take())
	}
	if faultErr != nil {
		return fmt.Errorf("fault injection: %w", faultErr)
	}
	var linkUps uint64
	for _, n := range nodes {
		linkUps += n.tap.linkUps.Load()
	}
	all := summarize(prop.all.snapshot())
	fmt.Fprintln(w)
	fmt.Fprintf(w, "summary after %.1fs (%d nodes):\n", elapsed.Seconds(), o.nodes)
	fmt.Fprintf(w, "  reads:        %d (hit ratio %s), database loads %d, read errors %d\n", final.reads, hitRatio(final.hits, final.misses), db.Reads(), final.readErrors)
	fmt.Fprintf(w, "  writes:       %d acknowledged (%d Set+WithInvalidation, %d Delete+WithDeleteInvalidation), write errors %d\n", final.acks, cnt.Sets.Load(), cnt.Deletes.Load(), cnt.WriteErrors.Load())
	fmt.Fprintf(w, "  broadcasts:   %d messages sent, %d received by peers (own echoes excluded)\n", final.sent, final.received)
	fmt.Fprintf(w, "  propagation:  p50 %s, p99 %s, max %s over %d samples\n", fmtDur(all.pct(50)), fmtDur(all.pct(99)), fmtDur(all.max()), len(all))
	if o.fault {
		fmt.Fprintf(w, "  recovery:     %d resubscriptions after the fault (after each, that node catches up from the replay log or clears its cache before it serves again)\n", linkUps-linkUpsBeforeFault)
	}
	fmt.Fprintf(w, "  gaps:         %d possible losses detected by the nodes during the run: %d caught up from the replay log (%d keys replayed), %d cache clears%s\n",
		final.gaps-base.gaps, final.catchUps-base.catchUps, final.keysReplayed-base.keysReplayed, final.clearsOnGap-base.clearsOnGap, clearReasons(base.clears, final.clears))
	fmt.Fprintf(w, "  stale bound:  %s\n", bound)
	fmt.Fprintf(w, "stale reads: %d\n", final.stale)
	if final.stale > 0 {
		fmt.Fprintf(w, "first stale read: %s\n", checker.FirstStale())
		return fmt.Errorf("%d stale reads beyond the bound %v", final.stale, bound.Total())
	}
	if final.reads == 0 {
		return errors.New("no reads completed")
	}
	return nil
}

type demoSnapshot struct {
	at                          time.Time
	reads, readErrors, loads    uint64
	hits, misses                uint64
	acks, sent, received, stale uint64
	linksUp, serving, nodes     int
	gaps, clearsOnGap           uint64
	catchUps, keysReplayed      uint64
	clears                      map[string]uint64 // whole-cache clears by reason, summed over the nodes
}

func takeSnapshot(nodes []*demoNode, cnt *workload.Counters, chk *invacachetest.Checker) demoSnapshot {
	s := demoSnapshot{
		at: time.Now(), reads: cnt.Reads.Load(), readErrors: cnt.ReadErrors.Load(),
		acks: cnt.Acks.Load(), stale: chk.Stale(), nodes: len(nodes), clears: map[string]uint64{},
	}
	for _, n := range nodes {
		st := n.cache.Stats()
		s.hits += st.Hits
		s.misses += st.Misses
		s.loads += st.Loads
		s.sent += n.tap.sent.Load()
		s.received += n.tap.received.Load()
		if n.tap.up.Load() {
			s.linksUp++
		}
		if st.Invalidation.Serving {
			s.serving++
		}
		s.gaps += st.Invalidation.Gaps
		s.clearsOnGap += st.Invalidation.ClearsOnGap
		s.catchUps += st.Invalidation.CatchUps
		s.keysReplayed += st.Invalidation.KeysReplayed
		for r, n := range st.Invalidation.ClearsByReason {
			s.clears[r] += n
		}
	}
	return s
}

// clearReasons describes the gap clears between two snapshots by reason
// (" (no_continuity 3)"), or "" when there were none. A peer's Clear is not
// a gap and is left out.
func clearReasons(before, after map[string]uint64) string {
	var parts []string
	for _, r := range invacache.ClearReasons() {
		if n := after[r] - before[r]; n > 0 && r != invacache.ClearReasonPeer {
			parts = append(parts, fmt.Sprintf("%s %d", r, n))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func printDemoRow(w io.Writer, start time.Time, prev, cur demoSnapshot, lat []time.Duration) {
	secs := cur.at.Sub(prev.at).Seconds()
	if secs <= 0 {
		return
	}
	rate := func(a, b uint64) float64 { return float64(a-b) / secs }
	l := summarize(lat)
	fmt.Fprintf(w, "%6.1fs %6s %8.0f %7.0f %8.0f %6.0f %6.0f %9s %9s %6d %3d/%d %5d/%d\n",
		cur.at.Sub(start).Seconds(), hitRatio(cur.hits-prev.hits, cur.misses-prev.misses),
		rate(cur.reads, prev.reads), rate(cur.loads, prev.loads), rate(cur.acks, prev.acks),
		rate(cur.sent, prev.sent), rate(cur.received, prev.received),
		fmtDur(l.pct(50)), fmtDur(l.pct(99)), cur.stale-prev.stale, cur.linksUp, cur.nodes, cur.serving, cur.nodes)
}

func hitRatio(hits, misses uint64) string {
	if hits+misses == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(hits)/float64(hits+misses))
}
