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
		summary: "run cache nodes over a redis-server it starts, inject faults on a schedule (kill, cut, blackhole, slow subscriber, partitioned publisher) and count stale reads beyond the bound",
		usage:   "[--duration D] [--nodes N] [--faults LIST] [flags]",
		setup: func(fs *flag.FlagSet, e *env) func(context.Context, []string) error {
			var c chaos.Config
			var faults string
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
			fs.DurationVar(&c.PublishWindow, "publish-window", 100*time.Millisecond, "bound: time an acknowledged invalidation may still be in flight to a live subscriber")
			fs.DurationVar(&c.Slack, "slack", 400*time.Millisecond, "bound: allowance for scheduling noise")
			fs.StringVar(&faults, "faults", "all", "comma-separated fault kinds in rotation: kill,cut,blackhole,slow,partition")
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
				if len(rep.FaultProblems) > 0 {
					return fmt.Errorf("%d faults did not have their intended effect or were not recovered from (see the problems above)", len(rep.FaultProblems))
				}
				return nil
			}
		},
	}
}
