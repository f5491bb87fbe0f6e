package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/halilbulentorhon/invacache-go/cmd/invacache/internal/chaos"
)

func chaosCommand() command {
	return command{
		name:    "chaos",
		summary: "run cache nodes over a Redis it starts (standalone, cluster or sentinel), inject faults on a schedule (kill, failover, cut, blackhole, slow subscriber, partitioned publisher; on the replay log: trim, rdb, oom, xdel, unlogged, poison) and count stale reads beyond the bound",
		usage:   "[--duration D] [--nodes N] [--topology T] [--procs] [--faults LIST] [flags]",
		setup: func(fs *flag.FlagSet, e *env) func(context.Context, []string) error {
			var c chaos.Config
			var faults, topology string
			var verbose bool
			fs.DurationVar(&c.Duration, "duration", 30*time.Second, "how long the workload and the fault schedule run")
			fs.IntVar(&c.Nodes, "nodes", 4, "cache nodes (each behind its own fault proxy)")
			fs.IntVar(&c.Keys, "keys", 200, "keys in the simulated database")
			fs.IntVar(&c.ReadersPerNode, "readers", 2, "reader goroutines per node")
			fs.IntVar(&c.WritersPerNode, "writers", 2, "writer goroutines per node")
			fs.IntVar(&c.ReadRate, "read-rate", 1000, "reads per second per reader")
			fs.IntVar(&c.WriteRate, "write-rate", 25, "writes per second per writer (a writer waits for its Flush)")
			fs.DurationVar(&c.DBLatency, "db-latency", 200*time.Microsecond, "simulated database read latency")
			fs.DurationVar(&c.MaxStaleness, "max-staleness", time.Second, "the nodes' MaxStaleness (part of the bound)")
			fs.DurationVar(&c.OutageStaleness, "outage-staleness", 0, "the nodes' OutageStaleness (0: off); a read a node served past MaxStaleness while Redis was unreachable is judged against it instead of MaxStaleness")
			fs.DurationVar(&c.PublishWindow, "publish-window", 100*time.Millisecond, "bound: time an acknowledged invalidation may still be in flight to a live subscriber")
			fs.DurationVar(&c.Slack, "slack", 400*time.Millisecond, "bound: allowance for scheduling noise")
			fs.StringVar(&topology, "topology", "standalone", "Redis deployment: standalone (one server, a fault proxy per node), cluster (3 masters + 1 replica each, classic Pub/Sub), cluster-sharded (the same, sharded Pub/Sub), sentinel (master, replica, 3 sentinels)")
			fs.BoolVar(&c.Processes, "procs", false, "run every node in its own OS process (this binary re-executed); they report reads and writes to the checker over a pipe")
			fs.BoolVar(&c.Baseline, "baseline", true, "then run the same workload without faults for as long as the fault run lasted, and report both side by side")
			fs.BoolVar(&c.AOF, "aof", false, "run Redis with an append-only file (appendfsync always), so a killed server keeps its data")
			fs.StringVar(&faults, "faults", "all", "comma-separated fault kinds in rotation; standalone: kill,cut,blackhole,slow,partition; cluster and sentinel: kill,failover,cut; "+
				"replay log faults on standalone, cluster and cluster-sharded (not sentinel; in the default rotation on standalone and cluster): trim (a writer with a 1s ReplayWindow, the log cut past a node's cursor and trimmed while nodes catch up), "+
				"rdb (SAVE, writes, SIGKILL, restart from the snapshot), oom (maxmemory 1 with noeviction for 3s), xdel (XDEL of log entries, cursors among them), "+
				"unlogged (a DisableReplay writer and raw PUBLISHes while a node is away), poison (the log key SET to a string, or an entry of the maximum id); "+
				"on standalone one node is kept away while the log changes and must clear; on a cluster every subscription is closed instead (no proxies there)")
			fs.DurationVar(&c.FaultPause, "fault-pause", 300*time.Millisecond, "quiet time between faults")
			fs.DurationVar(&c.Interval, "interval", time.Second, "report interval (goroutines and heap in use are sampled here)")
			fs.Uint64Var(&c.Seed, "seed", 0, "workload random seed (0 = random)")
			broadcast := true
			fs.BoolVar(&broadcast, "broadcast", true, "writers broadcast their writes; --broadcast=false updates only the writer's cache, a negative control that the check must catch")
			fs.BoolVar(&verbose, "verbose", false, "log the library's warnings to stderr")
			asJSON := fs.Bool("json", false, "print the report as one JSON object on one line instead of the text report (field names in snake_case, durations in nanoseconds)")
			return func(ctx context.Context, args []string) error {
				if len(args) > 0 {
					return usagef("unexpected argument %q", args[0])
				}
				ks, err := chaos.ParseKinds(faults)
				if err != nil {
					return usagef("--faults: %v", err)
				}
				c.Faults = ks
				if c.Topology, err = chaos.ParseTopology(topology); err != nil {
					return usagef("--topology: %v", err)
				}
				c.NoBroadcast = !broadcast
				if verbose {
					c.Logger = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
					quietRedisLog(c.Logger)
				}
				text := e.stdout
				if *asJSON {
					text = io.Discard
				}
				rep, err := chaos.Run(ctx, c, text)
				if *asJSON && rep != nil {
					writeJSONLine(e.stdout, snakeJSON("chaos", rep))
				}
				if errors.Is(err, chaos.ErrInvalidConfig) {
					return usagef("%v", err)
				}
				if err != nil {
					return err
				}
				if rep.Violations > 0 {
					return fmt.Errorf("%d reads beyond the staleness bound %v", rep.Violations, rep.Bound.Total())
				}
				if b := rep.Baseline; b != nil && b.Violations > 0 {
					return fmt.Errorf("baseline: %d reads beyond the staleness bound %v", b.Violations, b.Bound.Total())
				}
				if len(rep.FaultProblems) > 0 {
					return fmt.Errorf("%d faults did not have their intended effect or were not recovered from (see the problems above)", len(rep.FaultProblems))
				}
				return nil
			}
		},
	}
}
