package bench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/backend/option"
	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/faultproxy"
	"github.com/halilbulentorhon/invacache-go/internal/redisserver"
	"github.com/halilbulentorhon/invacache-go/internal/wire"
	"github.com/halilbulentorhon/invacache-go/invalidation"
	redisdriver "github.com/halilbulentorhon/invacache-go/invalidation/drivers/redis"
)

const replayCommand = "cd bench && go test -run TestReplayReport -v -timeout 20m -args -report"

const replayOut = "REPLAY_RESULTS.md"

// newReplayEnv is newPropEnv with the replay log on or off for both nodes.
func newReplayEnv(tb testing.TB, disable bool) *propEnv {
	tb.Helper()
	srv, err := redisserver.Start(redisserver.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return newPropEnvOn(tb, true, propSetup{
		srv: srv, stop: srv.Close,
		a: redisdriver.Config{Address: srv.Addr(), Channel: propChannel, PoolSize: 10, DisableReplay: disable},
		b: redisdriver.Config{Address: srv.Addr(), Channel: propChannel, PoolSize: 11, DisableReplay: disable},
		newRaw: func() goredis.UniversalClient {
			return goredis.NewClient(&goredis.Options{Addr: srv.Addr(), Protocol: 2})
		},
		rawLatCh: "bench:raw:lat", rawCountCh: "bench:raw:count",
	})
}

// usedMemory is INFO memory's used_memory of srv.
func usedMemory(tb testing.TB, srv *redisserver.Server) float64 {
	tb.Helper()
	info, err := srv.Do("INFO", "memory")
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return n
		}
	}
	tb.Fatal("no used_memory in INFO memory")
	return 0
}

// publishLatencies times n single-payload Publish calls on each driver,
// alternating, and returns them in µs.
func publishLatencies(tb testing.TB, logged, plain *redisdriver.Driver, n int) (l, p []float64) {
	tb.Helper()
	ctx := context.Background()
	env := wire.AppendMessage(nil, wire.Message{Version: wire.Version, Origin: 1, Seq: 1, Ops: []wire.Op{{Keys: []string{"user:1"}}}})
	for i := 0; i < n; i++ {
		for j, d := range []*redisdriver.Driver{logged, plain} {
			t0 := time.Now()
			if err := d.Publish(ctx, [][]byte{env}); err != nil {
				tb.Fatal(err)
			}
			us := float64(time.Since(t0).Nanoseconds()) / 1e3
			if j == 0 {
				l = append(l, us)
			} else {
				p = append(p, us)
			}
		}
	}
	return l, p
}

// fillLog publishes keys through d as envelopes of perMsg keys each, in
// batches of up to 64 messages per Publish, and returns the message count.
func fillLog(tb testing.TB, d *redisdriver.Driver, keys []string, perMsg int) int {
	tb.Helper()
	ctx := context.Background()
	var batch [][]byte
	msgs := 0
	seq := uint64(0)
	for i := 0; i < len(keys); i += perMsg {
		seq++
		batch = append(batch, wire.AppendMessage(nil, wire.Message{Version: wire.Version, Origin: 42, Seq: seq,
			Ops: []wire.Op{{Keys: keys[i:min(i+perMsg, len(keys))]}}}))
		msgs++
		if len(batch) == 64 || i+perMsg >= len(keys) {
			if err := d.Publish(ctx, batch); err != nil {
				tb.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	return msgs
}

// replayTime times Replay of everything after `after`, decoding each
// envelope as the engine does, and checks the key count.
func replayTime(tb testing.TB, d *redisdriver.Driver, after invalidation.LogPos, wantKeys int) time.Duration {
	tb.Helper()
	keys := 0
	t0 := time.Now()
	_, err := d.Replay(context.Background(), after, func(_ invalidation.LogPos, p []byte) error {
		m, err := wire.Decode(p)
		if err != nil {
			return err
		}
		for _, op := range m.Ops {
			keys += len(op.Keys)
		}
		return nil
	})
	el := time.Since(t0)
	if err != nil {
		tb.Fatal(err)
	}
	if keys != wantKeys {
		tb.Fatalf("replayed %d keys, want %d", keys, wantKeys)
	}
	return el
}

// catchUpEndToEnd cuts a peer off, has the writer broadcast n distinct keys,
// lets the peer back and returns the time from the reconnection being
// allowed to the peer serving again after its catch-up (it includes the
// driver's reconnect backoff, 20 ms to 1 s).
func catchUpEndToEnd(tb testing.TB, n int) (time.Duration, invacache.InvalidationStats) {
	tb.Helper()
	srv, err := redisserver.Start(redisserver.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	defer srv.Close()
	px, err := faultproxy.New(srv.Addr())
	if err != nil {
		tb.Fatal(err)
	}
	defer px.Close()
	mk := func(addr string) invacache.Cache[string] {
		c, err := invacache.NewCache[string](config.InvaCacheConfig{
			Backend:      &config.BackendConfig{InMemory: &config.InMemoryConfig{Capacity: 1 << 20}},
			Invalidation: &config.InvalidationConfig{Type: "redis", DriverConfig: map[string]any{"Address": addr, "Channel": "bench:catchup"}},
		})
		if err != nil {
			tb.Fatal(err)
		}
		return c
	}
	a, b := mk(srv.Addr()), mk(px.Addr())
	defer a.Close()
	defer b.Close()
	waitFor := func(what string, cond func() bool) {
		deadline := time.Now().Add(time.Minute)
		for !cond() {
			if time.Now().After(deadline) {
				tb.Fatalf("timed out waiting for %s; B %+v", what, b.Stats().Invalidation)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	waitFor("serving", func() bool { return a.Stats().Invalidation.Serving && b.Stats().Invalidation.Serving })
	catchUps := b.Stats().Invalidation.CatchUps
	px.Refuse()
	px.Cut()
	waitFor("B's link down", func() bool { return !b.Stats().Invalidation.LinkUp })
	opt := option.WithDeleteInvalidation()
	for _, k := range distinctKeys(n) {
		_ = a.Delete(k, opt)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := a.Flush(ctx); err != nil {
		tb.Fatal(err)
	}
	t0 := time.Now()
	px.Accept()
	waitFor("B's catch-up", func() bool {
		st := b.Stats().Invalidation
		return st.CatchUps > catchUps && st.Serving
	})
	return time.Since(t0), b.Stats().Invalidation
}

// TestReplayReport prints (and with -report writes REPLAY_RESULTS.md) what
// the Redis replay log costs and buys: delivered keys/s and publish latency
// with the log vs DisableReplay (interleaved rounds, one process), Redis
// memory per 1M logged keys, and the time to catch up 100k missed keys.
// Without -report it runs a small smoke version.
func TestReplayReport(t *testing.T) {
	rounds, tpKeys, latN, memKeys, missed := 9, 1_000_000, 2000, 1_000_000, 100_000
	if !*report {
		rounds, tpKeys, latN, memKeys, missed = 1, 20_000, 50, 20_000, 2_000
	}
	withLog, noLog := newReplayEnv(t, false), newReplayEnv(t, true)
	defer withLog.close()
	defer noLog.close()

	// Throughput, interleaved (order alternating per round).
	keys := distinctKeys(tpKeys)
	var tpLog, tpNo, cpuLog, cpuNo []float64
	for r := 0; r < rounds; r++ {
		envs := []*propEnv{withLog, noLog}
		if r%2 == 1 {
			envs = []*propEnv{noLog, withLog}
		}
		for _, e := range envs {
			srvs := []*redisserver.Server{e.srv}
			c0 := redisCPU(t, srvs)
			res := broadcastThroughput(t, e, keys, 8)
			cpu := (redisCPU(t, srvs) - c0).Seconds() / float64(tpKeys) * 1e6 // Redis CPU seconds per 1M keys
			if e == withLog {
				tpLog, cpuLog = append(tpLog, res.keysPerSec), append(cpuLog, cpu)
			} else {
				tpNo, cpuNo = append(tpNo, res.keysPerSec), append(cpuNo, cpu)
			}
		}
	}
	tpRatio := roundRatios(tpLog, tpNo)

	// Publish latency, alternating single publishes on one server.
	srv, err := redisserver.Start(redisserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dl, err := redisdriver.New(redisdriver.Config{Address: srv.Addr(), Channel: "bench:lat", PoolSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer dl.Close()
	dp, err := redisdriver.New(redisdriver.Config{Address: srv.Addr(), Channel: "bench:lat", PoolSize: 5, DisableReplay: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dp.Close()
	publishLatencies(t, dl, dp, 200) // warm-up
	var p50Log, p50No, latRatio []float64
	for r := 0; r < rounds; r++ {
		l, p := publishLatencies(t, dl, dp, latN)
		p50Log, p50No = append(p50Log, median(l)), append(p50No, median(p))
		latRatio = append(latRatio, median(l)/median(p))
	}

	// Memory per logged key: group commit (≈3.7k keys per message, as the
	// throughput run sends) and one key per message.
	memOf := func(perMsg int) (perKey float64, msgs int) {
		s, err := redisserver.Start(redisserver.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		d, err := redisdriver.New(redisdriver.Config{Address: s.Addr(), Channel: "bench:mem"})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		before := usedMemory(t, s)
		msgs = fillLog(t, d, distinctKeys(memKeys), perMsg)
		return (usedMemory(t, s) - before) / float64(memKeys), msgs
	}
	memGroup, msgsGroup := memOf(3700)
	memSingle, msgsSingle := memOf(1)

	// Catch-up: the driver's Replay of `missed` keys (read + decode), at
	// group commit and at one key per message; then end to end.
	replayOf := func(perMsg int) []float64 {
		s, err := redisserver.Start(redisserver.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		d, err := redisdriver.New(redisdriver.Config{Address: s.Addr(), Channel: "bench:replay"})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		head, err := d.LogHead(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		fillLog(t, d, distinctKeys(missed), perMsg)
		var ms []float64
		for r := 0; r < rounds; r++ {
			ms = append(ms, float64(replayTime(t, d, head, missed).Microseconds())/1e3)
		}
		return ms
	}
	rpGroup, rpSingle := replayOf(3700), replayOf(1)
	var e2e []float64
	var lastSt invacache.InvalidationStats
	for r := 0; r < min(rounds, 3); r++ {
		d, st := catchUpEndToEnd(t, missed)
		e2e, lastSt = append(e2e, float64(d.Microseconds())/1e3), st
	}

	var b strings.Builder
	fmt.Fprintf(&b, "# Replay log benchmark results\n\nGenerated by `%s`.\n\n", replayCommand)
	fmt.Fprintf(&b, "Machine: %d CPUs (`nproc`), %s, %s %s/%s, %s, redis-server %s on loopback (started by the test, defaults; no persistence). Shared machine: other agents' jobs ran meanwhile.\n\n",
		runtime.NumCPU(), cpuModel(), runtime.Version(), runtime.GOOS, runtime.GOARCH,
		time.Now().UTC().Format("2006-01-02 15:04 MST"), redisVersion(withLog.srv))
	b.WriteString("| Measure | With the log | `DisableReplay` | Ratio (median [min, max] of per-round ratios) | Target | Met |\n|---|---|---|---|---|---|\n")
	fmt.Fprintf(&b, "| Delivered keys/s (8 goroutines, %d distinct keys, group commit, writer A → peer B) | %s | %s | %s | ≥ 0.8x | %s |\n",
		tpKeys, fmtRates([]float64{median(tpLog)}), fmtRates([]float64{median(tpNo)}), spread(tpRatio), yes(median(tpRatio) >= 0.8))
	fmt.Fprintf(&b, "| Redis CPU per 1M delivered keys in that run (INFO cpu, user+sys) | %.0f ms | %.0f ms | %s | (cost) | — |\n",
		median(cpuLog)*1e3, median(cpuNo)*1e3, spread(roundRatios(cpuLog, cpuNo)))
	fmt.Fprintf(&b, "| Publish latency p50 (one payload per Publish, the driver's round trip) | %.1f µs | %.1f µs | %s | ≤ 1.2x | %s |\n",
		median(p50Log), median(p50No), spread(latRatio), yes(median(latRatio) <= 1.2))
	fmt.Fprintf(&b, "\nRounds: %d, interleaved (the order alternates per round). Throughput per round: log %s, no log %s keys/s. Latency: %d alternating publishes per round; p50 per round: log %s µs, no log %s µs.\n\n",
		rounds, fmtRates(tpLog), fmtRates(tpNo), latN, fmtFloats(p50Log), fmtFloats(p50No))
	b.WriteString("| Measure | Value | Target | Met |\n|---|---|---|---|\n")
	fmt.Fprintf(&b, "| Redis memory per 1M logged keys, group commit (%d keys → %d stream entries of ≈3.7k keys) | %.1f MB (%.1f B/key) | stated | — |\n",
		memKeys, msgsGroup, memGroup*1e6/1e6, memGroup)
	fmt.Fprintf(&b, "| Redis memory per 1M logged keys, one key per message (%d entries) | %.1f MB (%.1f B/key) | stated | — |\n",
		msgsSingle, memSingle*1e6/1e6, memSingle)
	fmt.Fprintf(&b, "| Catch-up of %d missed keys: Replay (XINFO + XRANGE in 512-entry chunks, envelopes decoded), group commit | %.1f ms | < 1 s | %s |\n",
		missed, median(rpGroup), yes(median(rpGroup) < 1000))
	fmt.Fprintf(&b, "| Catch-up of %d missed keys: Replay, one key per message (%d entries) | %.1f ms | < 1 s | %s |\n",
		missed, missed, median(rpSingle), yes(median(rpSingle) < 1000))
	fmt.Fprintf(&b, "| Catch-up of %d missed keys end to end (reconnect allowed → peer serving again, includes the 20 ms–1 s reconnect backoff) | %.1f ms | (< 1 s) | %s |\n",
		missed, median(e2e), yes(median(e2e) < 1000))
	fmt.Fprintf(&b, "\nMemory: INFO memory used_memory before and after filling a fresh server's log with `user:N` keys (about 11 bytes each; an envelope stores each key with its length prefix), per key, times 1M. Replay per round: group commit %s ms, one key per message %s ms. End to end per round: %s ms (last run's peer: CatchUps %d, KeysReplayed %d, ClearsByReason %v).\n",
		fmtFloats(rpGroup), fmtFloats(rpSingle), fmtFloats(e2e), lastSt.CatchUps, lastSt.KeysReplayed, lastSt.ClearsByReason)
	t.Log("\n" + b.String())
	if *report {
		if err := os.WriteFile(replayOut, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func yes(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

func fmtFloats(xs []float64) string {
	s := make([]string, len(xs))
	for i, x := range slices.Clone(xs) {
		s[i] = fmt.Sprintf("%.1f", x)
	}
	return strings.Join(s, "/")
}
