package redis_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/halilbulentorhon/invacache-go/internal/engine"
	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
	"github.com/halilbulentorhon/invacache-go/internal/poll"
	"github.com/halilbulentorhon/invacache-go/internal/redisserver"
)

// logReads sums the calls Redis served that are not publishes, liveness or
// bookkeeping: the scripts and stream reads a node's gap handling makes.
func logReads(t *testing.T, srv *redisserver.Server) int {
	t.Helper()
	out, err := srv.Do("INFO", "commandstats")
	if err != nil {
		t.Fatal(err)
	}
	skip := map[string]bool{"publish": true, "spublish": true, "ping": true, "info": true, "subscribe": true,
		"ssubscribe": true, "client": true, "hello": true, "command": true, "select": true, "auth": true, "config": true}
	n := 0
	for _, line := range strings.Split(out, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
		name = strings.TrimPrefix(name, "cmdstat_")
		if !ok || skip[strings.SplitN(name, "|", 2)[0]] {
			continue
		}
		calls, _, _ := strings.Cut(rest, ",")
		c, _ := strconv.Atoi(calls)
		n += c
	}
	return n
}

// A publisher flooding the channel with forged frames (an epoch of its own,
// an id that never moves, a malformed envelope inside) is not amplified onto
// Redis: each node's gap handling stays within GapReadsPerSecond log reads.
// Before the budget, 5,000 such PUBLISHes caused 30,003 EVALSHA on 3 nodes
// (this test: 59,994 log reads for 2,000 frames).
func TestGarbageFramesAreNotAmplified(t *testing.T) {
	leakcheck.Check(t)
	const frames, batch, nodesN = 1000, 100, 3
	srv, ch, cs := nodes(t, nodesN)
	setAll(t, cs, "k", "v")
	before := logReads(t, srv)
	received, lost := make([]uint64, nodesN), make([]uint64, nodesN)
	for i, c := range cs {
		received[i] = c.Stats().Invalidation.MessagesReceived
	}
	fc := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	defer fc.Close()
	ctx := context.Background()
	start := time.Now()
	// In batches, each delivered before the next, so the readers' backlog
	// stays short and no node misses its liveness proof behind it.
	for sent := 0; sent < frames; sent += batch {
		if _, err := fc.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for range batch {
				p.Publish(ctx, ch, "\x00ivl1 zz 1-1 \x00ivc1 zz")
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		// Pub/Sub does not promise delivery: a node whose PONG came late
		// behind the backlog resubscribes and loses the rest of a batch.
		// The budget is judged on the time taken either way.
		for i, c := range cs {
			want := received[i] + uint64(sent+batch) - lost[i]
			if !poll.Within(10*time.Second, func() bool { return c.Stats().Invalidation.MessagesReceived >= want }) {
				got := c.Stats().Invalidation.MessagesReceived
				t.Logf("node %d: %d frames up to %d not delivered within 10s (its link restarted)", i, want-got, sent+batch)
				lost[i] += want - got
			}
		}
	}
	elapsed := time.Since(start)
	got := logReads(t, srv) - before
	limit := nodesN * (engine.GapReadsPerSecond + int(elapsed.Seconds()*engine.GapReadsPerSecond) + 2)
	if got > limit {
		t.Errorf("%d forged frames on %d nodes in %s cost %d log reads, want at most %d", frames, nodesN, elapsed, got, limit)
	}
	t.Logf("%d forged frames on %d nodes in %s: %d log reads", frames, nodesN, elapsed.Round(time.Millisecond), got)
	setAll(t, cs, "k", "v2") // the nodes still work
}
