package chaos

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Fault timings. They are chosen against MaxStaleness so each fault has its
// intended effect (e.g. a blackhole lasts until the node stops serving).
const (
	killDown      = 600 * time.Millisecond // redis-server stays dead this long
	slowLatency   = 250 * time.Millisecond // per chunk Redis sends the slowed node
	floodPayload  = 16 << 10               // bytes per flood message
	floodBatch    = 64                     // messages per pipeline (1MB)
	floodMaxBytes = 256 << 20              // give up on the slow fault past this
	slowLimit     = "pubsub 256kb 128kb 1" // client-output-buffer-limit during the slow fault
	defaultLimit  = "pubsub 32mb 8mb 60"   // Redis's default, restored after it
	dropLogLine   = "for overcoming of output buffer limits"
)

// inject runs one fault to its heal and returns a description and, when its
// intended effect could not be verified, a problem ("" when verified).
func (r *run) inject(ctx context.Context, k Kind, round int, n *node) (desc, problem string) {
	switch k { // the log faults: every topology that offers them (Topology.Kinds)
	case Trim:
		return r.trim(ctx, round, n)
	case RDB:
		return r.rdb(ctx, n)
	case OOM:
		return r.oom(ctx, n)
	case XDel:
		return r.xdel(ctx, round, n)
	case Unlogged:
		return r.unlogged(ctx, n)
	case Poison:
		return r.poison(ctx, round, n)
	}
	if r.cfg.Topology != Standalone {
		switch k {
		case Kill:
			return r.killMaster(ctx)
		case Failover:
			return r.failover(ctx)
		case Cut:
			return r.cutAll(ctx)
		}
		return string(k), "fault kind not available on " + string(r.cfg.Topology)
	}
	switch k {
	case Kill:
		return r.kill(ctx)
	case Cut:
		if round%2 == 0 {
			return r.cutProxy(ctx, n)
		}
		return r.clientKill(ctx)
	case Blackhole:
		return r.blackhole(ctx, n)
	case Slow:
		return r.slow(ctx, n)
	case Partition:
		return r.partition(ctx, n, round%2 == 1)
	}
	return string(k), "unknown fault kind"
}

func (r *run) gapsOf(n *node) uint64 { return n.stats().Invalidation.Gaps }

func (r *run) allGaps() []uint64 {
	g := make([]uint64, len(r.nodes))
	for i, n := range r.nodes {
		g[i] = r.gapsOf(n)
	}
	return g
}

// waitGapsAbove polls until every node in which has more gaps than before
// (it resubscribed and cleared).
func (r *run) waitGapsAbove(before []uint64, which []*node, timeout time.Duration) bool {
	return poll(timeout, func() bool {
		for _, n := range which {
			if r.gapsOf(n) <= before[n.id] {
				return false
			}
		}
		return true
	})
}

// poll calls cond every 5ms until it holds (true) or timeout passes (false).
func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

func (r *run) kill(ctx context.Context) (string, string) {
	before := r.allGaps()
	r.srv.Kill()
	sleepCtx(ctx, killDown)
	if err := r.srv.Restart(); err != nil {
		return "redis-server killed", fmt.Sprintf("restart failed: %v", err)
	}
	desc := fmt.Sprintf("redis-server killed (SIGKILL), restarted on the same port after %v", killDown)
	if !r.waitGapsAbove(before, r.nodes, 15*time.Second) {
		return desc, "not every node resubscribed"
	}
	return desc, ""
}

func (r *run) cutProxy(ctx context.Context, n *node) (string, string) {
	before := r.allGaps()
	n.proxy.Cut()
	desc := fmt.Sprintf("node %d's links reset by its proxy", n.id)
	if !r.waitGapsAbove(before, []*node{n}, 15*time.Second) {
		return desc, "the node did not resubscribe"
	}
	return desc, ""
}

func (r *run) clientKill(ctx context.Context) (string, string) {
	before := r.allGaps()
	out, err := r.srv.Do("CLIENT", "KILL", "TYPE", "pubsub")
	if err != nil {
		return "CLIENT KILL TYPE pubsub", fmt.Sprintf("CLIENT KILL: %v", err)
	}
	desc := fmt.Sprintf("CLIENT KILL TYPE pubsub closed %s subscriber connections", strings.TrimSpace(out))
	if !r.waitGapsAbove(before, r.nodes, 15*time.Second) {
		return desc, "not every node resubscribed"
	}
	return desc, ""
}

func (r *run) blackhole(ctx context.Context, n *node) (string, string) {
	n.proxy.Blackhole()
	t0 := time.Now()
	// Silence: only the staleness bound notices. Hold until the node stops
	// serving, and a little longer.
	stopped := poll(3*r.cfg.MaxStaleness+time.Second, func() bool { return !n.stats().Invalidation.Serving })
	took := time.Since(t0)
	sleepCtx(ctx, 200*time.Millisecond)
	n.proxy.Heal()
	desc := fmt.Sprintf("node %d's link blackholed (no FIN/RST); it stopped serving after %v; healed", n.id, took.Round(time.Millisecond))
	if !stopped {
		return desc, "the node kept serving through the blackhole"
	}
	return desc, ""
}

// dropCount counts the server log's "closed for overcoming of output buffer
// limits" lines (Redis 7.0 has no INFO counter for them).
func (r *run) dropCount() int {
	b, err := os.ReadFile(r.srv.LogPath())
	if err != nil {
		return 0
	}
	return strings.Count(string(b), dropLogLine)
}

func (r *run) slow(ctx context.Context, n *node) (string, string) {
	if _, err := r.srv.Do("CONFIG", "SET", "client-output-buffer-limit", slowLimit); err != nil {
		return "slow subscriber", fmt.Sprintf("CONFIG SET: %v", err)
	}
	defer r.srv.Do("CONFIG", "SET", "client-output-buffer-limit", defaultLimit)
	drops, gaps := r.dropCount(), r.gapsOf(n)
	n.proxy.SetLatency(0, slowLatency)

	// The flooder talks to Redis directly, not through any node's proxy.
	fc := goredis.NewClient(&goredis.Options{Addr: r.srv.Addr(), Protocol: 2, DisableIdentity: true, MaxRetries: -1})
	defer fc.Close()
	// A raw key no one caches, as an operator's redis-cli PUBLISH sends.
	// Every node that sees one live treats the log as holed, so its next
	// gap clears (unlogged_peer) instead of catching up: part of this
	// fault's cost. A flood through a Publisher (logged) was tried: the
	// slow node then replays megabytes of it through its slowed link, and
	// the fault cost five times the not-serving misses.
	payload := strings.Repeat("f", floodPayload)
	sent := 0
	dropped := false
	for sent < floodMaxBytes && ctx.Err() == nil {
		_, err := fc.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for i := 0; i < floodBatch; i++ {
				p.Publish(ctx, r.channel, payload)
			}
			return nil
		})
		if err != nil {
			break
		}
		sent += floodBatch * floodPayload
		if r.dropCount() > drops {
			dropped = true
			break
		}
	}
	// The drop is written to the log when the client is closed: give it a moment.
	if !dropped {
		dropped = poll(time.Second, func() bool { return r.dropCount() > drops })
	}
	// The node learns of the drop only through its liveness check: its
	// stream is still delayed by the proxy. Keep it slow until it
	// resubscribed, as a slow consumer would stay slow.
	resub := poll(15*time.Second, func() bool { return r.gapsOf(n) > gaps })
	n.proxy.SetLatency(0, 0)
	desc := fmt.Sprintf("node %d slowed (%v per chunk), %.1fMB flooded, Redis dropped %d subscriber(s) at %q",
		n.id, slowLatency, float64(sent)/(1<<20), r.dropCount()-drops, slowLimit)
	switch {
	case !dropped:
		return desc, "Redis did not drop the slow subscriber"
	case !resub:
		return desc, "the slowed node did not resubscribe"
	}
	return desc, ""
}

func (r *run) partition(ctx context.Context, n *node, blackhole bool) (string, string) {
	st0 := n.stats().Invalidation
	how := "refuses connections and reset the open ones"
	if blackhole {
		how = "blackholes its links"
		n.proxy.Blackhole()
	} else {
		n.proxy.Refuse()
		n.proxy.Cut()
	}
	// Writes in flight when the partition began may still complete; after
	// a moment none can until the heal.
	sleepCtx(ctx, 200*time.Millisecond)
	acks0 := n.cnt.Acks.Load()
	sleepCtx(ctx, 1200*time.Millisecond)
	st1 := n.stats().Invalidation
	acks1 := n.cnt.Acks.Load()
	waiting := n.waiting()
	if blackhole {
		n.proxy.Heal()
	} else {
		n.proxy.Accept()
	}
	healed := time.Now()
	drained := poll(15*time.Second, func() bool {
		return n.cnt.Acks.Load() > acks1 && n.stats().Invalidation.OutboxDepth == 0
	})
	desc := fmt.Sprintf("node %d partitioned from Redis (proxy %s) for 1.4s while writing: %d writes waiting in Flush at the heal, %d acknowledged before it, outbox drained and writes acknowledged %v after it (publish failures +%d)",
		n.id, how, waiting, acks1-acks0, time.Since(healed).Round(time.Millisecond), st1.PublishFailures-st0.PublishFailures)
	switch {
	case waiting == 0:
		return desc, "no write of the node was waiting for its acknowledgement during the partition"
	case acks1 != acks0:
		return desc, "writes were acknowledged while the node was partitioned"
	case !drained:
		return desc, "the outbox did not drain after the heal"
	}
	return desc, ""
}
