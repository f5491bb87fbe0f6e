package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	invacache "github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/backend/option"
	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/redis/go-redis/v9"
)

type benchOptions struct {
	samples    int
	warmup     int
	goroutines int
	keys       int
	rawKeys    int
	timeout    time.Duration
	plot       string
	quiet      bool
	json       bool
	keyPrefix  string
}

func benchCommand() command {
	return command{
		name:    "bench",
		summary: "measure propagation latency and invalidation throughput against a Redis",
		usage:   "[--redis ADDR] [--samples N] [--keys N] [--plot FILE.svg]",
		setup: func(fs *flag.FlagSet, e *env) func(context.Context, []string) error {
			cf := addCommonFlags(fs, "Redis `address` (host:port) (default \"localhost:6379\"); the default channel is \"invacache:bench\", not the caches' channel")
			var o benchOptions
			fs.IntVar(&o.samples, "samples", 2000, "latency samples per measurement (cache and raw alternate)")
			fs.IntVar(&o.warmup, "warmup", 100, "latency pairs taken before recording")
			fs.IntVar(&o.goroutines, "goroutines", 8, "goroutines broadcasting distinct keys in the group-commit run")
			fs.IntVar(&o.keys, "keys", 100_000, "keys invalidated in the group-commit throughput run")
			fs.IntVar(&o.rawKeys, "raw-keys", 20_000, "keys in the one-PUBLISH-per-key throughput run")
			fs.DurationVar(&o.timeout, "timeout", 5*time.Second, "give up on one sample (or a throughput run's tail) after this long")
			fs.StringVar(&o.plot, "plot", "", "write the latency histogram to this `file` (.svg)")
			fs.BoolVar(&o.quiet, "quiet", false, "no progress display")
			fs.BoolVar(&o.json, "json", false, "print the results as one JSON object on one line (durations in nanoseconds)")
			o.keyPrefix = "invacache-bench:"
			return func(ctx context.Context, args []string) error {
				if len(args) > 0 {
					return usagef("unexpected argument %q", args[0])
				}
				for _, c := range []struct {
					flag string
					bad  bool
					val  any
				}{
					{"--samples", o.samples < 1, o.samples}, {"--keys", o.keys < 1, o.keys}, {"--raw-keys", o.rawKeys < 1, o.rawKeys},
					{"--goroutines", o.goroutines < 1, o.goroutines}, {"--timeout", o.timeout <= 0, o.timeout},
				} {
					if c.bad {
						return usagef("%s: %v is not positive", c.flag, c.val)
					}
				}
				if o.warmup < 0 {
					return usagef("--warmup: %d is negative", o.warmup)
				}
				if o.plot != "" && !strings.HasSuffix(strings.ToLower(o.plot), ".svg") {
					return usagef("--plot: %q: only .svg is supported", o.plot)
				}
				chSet := false
				fs.Visit(func(f *flag.Flag) { chSet = chSet || f.Name == "channel" })
				s, err := cf.resolve()
				if err != nil {
					return err
				}
				s = s.withDefaultAddress()
				if !chSet {
					s.redis.Channel = "invacache:bench"
				}
				return runBench(ctx, e, s, o)
			}
		},
	}
}

// progress draws a one-line progress bar on w (stderr), redrawn in place.
type progress struct {
	w     io.Writer
	label string
	total int
	last  int // last percentage drawn
}

func (p *progress) update(done int) {
	if p == nil || p.w == nil {
		return
	}
	pct := 100 * done / p.total
	if pct/5 == p.last/5 && done != p.total {
		return // redraw in 5% steps: the display may be a log file
	}
	p.last = pct
	bar := strings.Repeat("#", pct/5) + strings.Repeat(".", 20-pct/5)
	fmt.Fprintf(p.w, "\r%-34s [%s] %3d%%", p.label, bar, pct)
	if done == p.total {
		fmt.Fprintln(p.w)
	}
}

func (e *env) progress(o benchOptions, label string, total int) *progress {
	if o.quiet {
		return nil
	}
	return &progress{w: e.stderr, label: label, total: total, last: -1}
}

// benchNode is a cache with a tapped driver; the tap reports each key the
// node dropped on a peer's message.
type benchNode struct {
	cache  invacache.Cache[int]
	driver *nodeDriver
	tap    *tap
}

func openBenchNode(s settings, onDropped func([]string, time.Time)) (*benchNode, error) {
	d, err := openNodeDriver(s.redis, discardLogger())
	if err != nil {
		return nil, err
	}
	t := newTap(d, onDropped)
	cfg := s.cache
	cfg.Logger = discardLogger()
	inv := config.InvalidationConfig{}
	if s.cache.Invalidation != nil {
		inv = *s.cache.Invalidation
	}
	inv.Type, inv.DriverConfig, inv.Redis, inv.Driver = "", nil, nil, t
	cfg.Invalidation = &inv
	c, err := invacache.NewCache[int](cfg)
	if err != nil {
		d.Close()
		return nil, err
	}
	return &benchNode{cache: c, driver: d, tap: t}, nil
}

func (n *benchNode) close() {
	n.cache.Close()
	n.driver.Close()
}

// benchResult is what runBench measured.
type benchResult struct {
	cacheLat, rawLat   []time.Duration
	lost               int
	groupKeysPerSec    float64
	groupMessages      uint64
	perKeyKeysPerSec   float64
	perKeyElapsed      time.Duration
	groupCommitElapsed time.Duration
}

func runBench(ctx context.Context, e *env, s settings, o benchOptions) (err error) {
	quietRedisLog(discardLogger())
	var plot *plotFile
	if o.plot != "" {
		// Check the path before measuring: a typo must not cost a run.
		if plot, err = openPlot(o.plot); err != nil {
			return err
		}
		defer func() { plot.finish(err) }()
	}
	client, err := connect(ctx, s)
	if err != nil {
		return err
	}
	defer client.Close()

	// B's tap forwards dropped keys to whoever waits (latency) and counts
	// them (throughput).
	var (
		waitMu  sync.Mutex
		waitKey string         // guarded by waitMu
		waitCh  chan time.Time // guarded by waitMu
		dropped atomic.Uint64  // keys dropped on B with the throughput prefix
	)
	tpPrefix := o.keyPrefix + "tp:"
	onDropped := func(keys []string, at time.Time) {
		var n uint64
		waitMu.Lock()
		for _, k := range keys {
			if strings.HasPrefix(k, tpPrefix) {
				n++
			} else if k == waitKey && waitCh != nil {
				waitCh <- at
				waitCh = nil
			}
		}
		waitMu.Unlock()
		dropped.Add(n)
	}
	a, err := openBenchNode(s, nil)
	if err != nil {
		return err
	}
	defer a.close()
	b, err := openBenchNode(s, onDropped)
	if err != nil {
		return err
	}
	defer b.close()
	wctx, cancel := context.WithTimeout(ctx, o.timeout)
	errA, errB := a.tap.waitUp(wctx), b.tap.waitUp(wctx)
	cancel()
	if errA != nil || errB != nil {
		return fmt.Errorf("cannot reach Redis at %s: subscription not established within %v", s.addrString(), o.timeout)
	}

	w := e.stdout
	if !o.json {
		fmt.Fprintf(w, "invacache bench: Redis at %s, channel %q\n", s.addrString(), s.redis.Channel)
	}
	var res benchResult

	// 1+2. One-way propagation through the library (Delete with broadcast
	// on A until B's handler has dropped the key) alternating with a raw
	// PUBLISH → go-redis subscriber receive, the floor, so both see the same
	// conditions. The first --warmup pairs are not recorded.
	sub := client.Subscribe(ctx, s.redis.Channel+":raw")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil { // the subscription confirmation
		return redisError(s.addrString(), err)
	}
	pr := e.progress(o, "latency: cache and raw, alternating", o.warmup+o.samples)
	for i := 0; i < o.warmup+o.samples; i++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		key := o.keyPrefix + "lat:" + strconv.Itoa(i)
		if err := b.cache.Set(key, i); err != nil {
			return err
		}
		ch := make(chan time.Time, 1)
		waitMu.Lock()
		waitKey, waitCh = key, ch
		waitMu.Unlock()
		t0 := time.Now()
		if err := a.cache.Delete(key, option.WithDeleteInvalidation()); err != nil {
			return err
		}
		select {
		case t1 := <-ch:
			if i >= o.warmup {
				res.cacheLat = append(res.cacheLat, t1.Sub(t0))
			}
			if _, err := b.cache.Get(key); !errors.Is(err, invacache.ErrNotFound) {
				return fmt.Errorf("node B still holds %q after its handler ran (err %v)", key, err)
			}
		case <-time.After(o.timeout):
			res.lost++
		case <-ctx.Done():
			return ctx.Err()
		}
		waitMu.Lock()
		waitCh = nil
		waitMu.Unlock()

		d, err := rawSample(ctx, client, sub, s.redis.Channel+":raw", o.timeout)
		if err != nil {
			return redisError(s.addrString(), err)
		}
		if i >= o.warmup {
			res.rawLat = append(res.rawLat, d)
		}
		pr.update(i + 1)
	}

	// 3. Throughput with group commit: A enqueues Delete broadcasts as fast
	// as it can; the outbox packs what accumulates during a publish into the
	// next message.
	pr = e.progress(o, "throughput: group commit", o.keys)
	msgs0 := a.tap.sent.Load()
	t0 := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, o.goroutines)
	for g := 0; g < o.goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			// Goroutine g takes keys g, g+goroutines, …: distinct keys.
			for i := g; i < o.keys; i += o.goroutines {
				if err := a.cache.Delete(tpPrefix+strconv.Itoa(i), option.WithDeleteInvalidation()); err != nil {
					errs <- err
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	if err := waitCount(ctx, &dropped, uint64(o.keys), o.timeout+time.Duration(o.keys)*time.Microsecond, pr); err != nil {
		return fmt.Errorf("group commit run: %w", err)
	}
	res.groupCommitElapsed = time.Since(t0)
	res.groupKeysPerSec = float64(o.keys) / res.groupCommitElapsed.Seconds()
	res.groupMessages = a.tap.sent.Load() - msgs0

	// 4. One PUBLISH per key (raw payloads, one round trip each), received
	// and applied by B.
	pr = e.progress(o, "throughput: one PUBLISH per key", o.rawKeys)
	dropped.Store(0)
	t0 = time.Now()
	for i := 0; i < o.rawKeys; i++ {
		if err := client.Publish(ctx, s.redis.Channel, tpPrefix+"raw:"+strconv.Itoa(i)).Err(); err != nil {
			return redisError(s.addrString(), err)
		}
	}
	if err := waitCount(ctx, &dropped, uint64(o.rawKeys), o.timeout+time.Duration(o.rawKeys)*10*time.Microsecond, pr); err != nil {
		return fmt.Errorf("one-PUBLISH-per-key run: %w", err)
	}
	res.perKeyElapsed = time.Since(t0)
	res.perKeyKeysPerSec = float64(o.rawKeys) / res.perKeyElapsed.Seconds()

	if o.plot != "" {
		werr := writeHistogramSVG(plot.f, "Invalidation propagation latency (one-way)", []series{
			{name: "Delete+broadcast on A → dropped on B", color: "#1f77b4", values: res.cacheLat},
			{name: "raw PUBLISH → subscriber received", color: "#ff7f0e", values: res.rawLat},
		})
		if werr != nil {
			return fmt.Errorf("--plot %s: %w", o.plot, werr)
		}
	}
	if o.json {
		writeJSONLine(w, benchJSON(s, o, res))
		return nil
	}
	printBench(w, o, res)
	if o.plot != "" {
		fmt.Fprintf(w, "latency histogram written to %s\n", o.plot)
	}
	return nil
}

// plotFile is the --plot file, opened before measuring.
type plotFile struct {
	f       *os.File
	path    string
	existed bool
}

// openPlot opens (creating) path for writing without truncating it, so a
// bad path fails before the measurement and a failed run leaves an
// existing file as it was.
func openPlot(path string) (*plotFile, error) {
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("--plot: %w", err)
	}
	return &plotFile{f: f, path: path, existed: statErr == nil}, nil
}

// finish closes the file; after a failed run it removes a file it created.
// On success it cuts the file to what was written.
func (p *plotFile) finish(runErr error) {
	if runErr != nil {
		p.f.Close()
		if !p.existed {
			os.Remove(p.path)
		}
		return
	}
	if off, err := p.f.Seek(0, io.SeekCurrent); err == nil {
		p.f.Truncate(off)
	}
	p.f.Close()
}

// latencyJSON is a latency distribution in bench --json output.
type latencyJSON struct {
	Samples int   `json:"samples"`
	P50     int64 `json:"p50_ns"`
	P90     int64 `json:"p90_ns"`
	P99     int64 `json:"p99_ns"`
	Max     int64 `json:"max_ns"`
}

func latencyOf(d []time.Duration) latencyJSON {
	s := summarize(d)
	return latencyJSON{Samples: len(s), P50: int64(s.pct(50)), P90: int64(s.pct(90)), P99: int64(s.pct(99)), Max: int64(s.max())}
}

// benchResultJSON is the line bench --json prints.
type benchResultJSON struct {
	Event   string      `json:"event"` // "bench"
	Redis   string      `json:"redis"`
	Channel string      `json:"channel"`
	Warmup  int         `json:"warmup"`
	Cache   latencyJSON `json:"cache_latency"` // Delete+broadcast on A → dropped on B
	Raw     latencyJSON `json:"raw_latency"`   // PUBLISH → go-redis subscriber received
	Lost    int         `json:"lost_samples"`

	GroupCommitGoroutines int     `json:"group_commit_goroutines"`
	GroupCommitKeys       int     `json:"group_commit_keys"`
	GroupCommitMessages   uint64  `json:"group_commit_messages"`
	GroupCommitKeysPerSec float64 `json:"group_commit_keys_per_sec"`
	PerKeyKeys            int     `json:"one_publish_per_key_keys"`
	PerKeyKeysPerSec      float64 `json:"one_publish_per_key_keys_per_sec"`
	Plot                  string  `json:"plot,omitempty"`
}

func benchJSON(s settings, o benchOptions, r benchResult) benchResultJSON {
	return benchResultJSON{
		Event: "bench", Redis: s.addrString(), Channel: s.redis.Channel, Warmup: o.warmup,
		Cache: latencyOf(r.cacheLat), Raw: latencyOf(r.rawLat), Lost: r.lost,
		GroupCommitGoroutines: o.goroutines, GroupCommitKeys: o.keys, GroupCommitMessages: r.groupMessages,
		GroupCommitKeysPerSec: r.groupKeysPerSec, PerKeyKeys: o.rawKeys, PerKeyKeysPerSec: r.perKeyKeysPerSec,
		Plot: o.plot,
	}
}

// rawSample publishes one message and times its arrival on sub.
func rawSample(ctx context.Context, client redis.UniversalClient, sub *redis.PubSub, channel string, timeout time.Duration) (time.Duration, error) {
	t0 := time.Now()
	if err := client.Publish(ctx, channel, "x").Err(); err != nil {
		return 0, err
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := sub.ReceiveMessage(rctx); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

// waitCount polls until c reaches want, with a deadline.
func waitCount(ctx context.Context, c *atomic.Uint64, want uint64, timeout time.Duration, pr *progress) error {
	deadline := time.Now().Add(timeout)
	for {
		got := c.Load()
		pr.update(int(min(got, want)))
		if got >= want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d keys arrived within %v", got, want, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

func printBench(w io.Writer, o benchOptions, r benchResult) {
	fmt.Fprintf(w, "\npropagation latency, one way (%d samples each, alternating, after %d warm-up pairs):\n", o.samples, o.warmup)
	fmt.Fprintf(w, "  %-44s %9s %9s %9s %9s\n", "", "p50", "p90", "p99", "max")
	for _, row := range []struct {
		name string
		d    []time.Duration
	}{
		{"cache: Delete+broadcast on A → B dropped it", r.cacheLat},
		{"raw:   PUBLISH → go-redis subscriber got it", r.rawLat},
	} {
		s := summarize(row.d)
		fmt.Fprintf(w, "  %-44s %9s %9s %9s %9s\n", row.name, fmtDur(s.pct(50)), fmtDur(s.pct(90)), fmtDur(s.pct(99)), fmtDur(s.max()))
	}
	if c, raw := summarize(r.cacheLat), summarize(r.rawLat); raw.pct(50) > 0 && raw.pct(99) > 0 {
		fmt.Fprintf(w, "  cache/raw: p50 %.2fx, p99 %.2fx\n", float64(c.pct(50))/float64(raw.pct(50)), float64(c.pct(99))/float64(raw.pct(99)))
	}
	if r.lost > 0 {
		fmt.Fprintf(w, "  lost samples (no drop within --timeout): %d\n", r.lost)
	}
	fmt.Fprintf(w, "\nthroughput (keys invalidated on B per second, from the first call to the last key dropped):\n")
	fmt.Fprintf(w, "  group commit (Delete+broadcast from %d goroutines, %d distinct keys in %d messages): %s keys/s\n", o.goroutines, o.keys, r.groupMessages, fmtRate(r.groupKeysPerSec))
	fmt.Fprintf(w, "  one PUBLISH per key (%d keys, one round trip each): %s keys/s\n", o.rawKeys, fmtRate(r.perKeyKeysPerSec))
	if r.perKeyKeysPerSec > 0 {
		fmt.Fprintf(w, "  ratio: group commit moves %.1fx the keys per second\n", r.groupKeysPerSec/r.perKeyKeysPerSec)
	}
}

func fmtRate(r float64) string {
	switch {
	case r >= 1e6:
		return fmt.Sprintf("%.2fM", r/1e6)
	case r >= 1e3:
		return fmt.Sprintf("%.1fk", r/1e3)
	default:
		return fmt.Sprintf("%.0f", r)
	}
}
