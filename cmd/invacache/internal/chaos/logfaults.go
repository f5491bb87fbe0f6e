package chaos

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	invacache "github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/cmd/invacache/internal/workload"
	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/redisserver"
)

// Faults on the replay log (issue 18): each one attacks a way the log could
// "prove" a catch-up it cannot. They run on Standalone, Cluster and
// ClusterSharded (not Sentinel: untested there). A node is "away" while the
// log is changed under it: on Standalone the target's proxy refuses
// connections for the fault, so it comes back with a cursor older than the
// change and its catch-up must clear (checked); on a cluster the nodes have
// no proxy, so every subscription is closed (CLIENT KILL TYPE pubsub on
// every data server) and the nodes are away only until they resubscribe:
// the check is then that the change happened (the log's own state), and the
// stale-read check judges the rest.
const (
	awayFor     = 1500 * time.Millisecond // a node stays away this long on Standalone
	oomFor      = 3 * time.Second         // maxmemory stays reached this long
	rdbTail     = time.Second             // writes between the snapshot and the kill
	trimWindow  = time.Second             // the short-window writer's ReplayWindow (the driver's minimum)
	extraRate   = 100                     // writes/s of a fault's extra writer
	maxStreamID = "18446744073709551615-18446744073709551615"
	// checkWait bounds the wait for a node's clear after it came back.
	checkWait = 15 * time.Second
)

// logKey is the replay log's key of suffix for the run's channel, named as
// the Redis driver names it (logKeys in invalidation/drivers/redis/replay.go)
// for a channel without braces.
func (r *run) logKey(suffix string) string { return "{" + r.channel + "}:" + suffix }

// logServer is the server holding the log: the channel's master.
func (r *run) logServer() (*redisserver.Server, error) {
	m, _, err := r.channelMaster()
	return m, err
}

// newestID is the id of the log's last entry ("" when empty or missing).
func newestID(s *redisserver.Server, key string) string {
	out, err := s.Do("XREVRANGE", key, "+", "-", "COUNT", "1")
	if err != nil || out == "" {
		return ""
	}
	id, _, _ := strings.Cut(out, "\n")
	return id
}

// getOr is GET key, "" when missing or on an error.
func getOr(s *redisserver.Server, key string) string {
	v, err := s.Do("GET", key)
	if err != nil {
		return ""
	}
	return v
}

// clearsOf counts n's gap clears, collapsed ones included (a clear of an
// empty cache is still "did not catch up").
func clearsOf(n *node) uint64 {
	st := n.stats().Invalidation
	return st.ClearsOnGap + st.ClearsCollapsed
}

// away takes the fault's node(s) off Redis; the returned heal brings them
// back (see the comment on the constants).
func (r *run) away(n *node) (heal func(), err error) {
	if n.proxy != nil {
		n.proxy.Refuse()
		n.proxy.Cut()
		return n.proxy.Accept, nil
	}
	for _, s := range r.dataNodes() {
		if _, err := s.Do("CLIENT", "KILL", "TYPE", "pubsub"); err != nil {
			return func() {}, fmt.Errorf("CLIENT KILL on %s: %w", s.Addr(), err)
		}
	}
	return func() {}, nil
}

// mustClear waits until n cleared after it came back (its clears above
// before); a problem when it did not.
func mustClear(n *node, before uint64, why string) string {
	if poll(checkWait, func() bool { return clearsOf(n) > before }) {
		return ""
	}
	return fmt.Sprintf("node %d did not clear after %s (catch-ups %d)", n.id, why, n.stats().Invalidation.CatchUps)
}

// extraWriter runs a workload writer on a temporary cache whose Redis
// settings are the nodes' changed by set, until stop is called. Its writes
// are acknowledged and judged like every other writer's.
func (r *run) extraWriter(set func(*config.RedisInvalidationConfig)) (stop func(), err error) {
	rc := r.redisConfig(len(r.nodes), "")
	if r.srv != nil {
		rc.Address = r.srv.Addr() // straight to Redis, not through a node's proxy
	}
	set(&rc)
	c, err := invacache.NewCache[uint64](nodeCacheConfig(rc, r.cfg.MaxStaleness, r.cfg.OutageStaleness, 16, r.cfg.Logger))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	var cnt workload.Counters
	w := workload.Writer{Cache: c, DB: r.db, Check: r.chk, Counters: &cnt, Rate: extraRate, Zipf: zipf,
		Seed: r.cfg.Seed + uint64(20_000+r.faultN), DeleteShare: 0.5}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); w.Run(ctx) }()
	return func() { cancel(); wg.Wait(); c.Close() }, nil
}

// trim: a writer with the shortest ReplayWindow trims the log, the log is
// cut (on Standalone to its newest entry while a node is away, past its
// cursor, every other round: in the others only the trimming below races
// the node's catch-up, case 1 of issue 18; on a cluster to nothing, in the
// MULTI that closes the subscriptions on the master), and trimming goes on (MINID ~ half a second ago, every 50ms)
// while the nodes catch up.
func (r *run) trim(ctx context.Context, round int, n *node) (string, string) {
	s, err := r.logServer()
	if err != nil {
		return "trim", err.Error()
	}
	key := r.logKey("log")
	stopW, err := r.extraWriter(func(c *config.RedisInvalidationConfig) { c.ReplayWindow = trimWindow })
	if err != nil {
		return "trim", fmt.Sprintf("short-window writer: %v", err)
	}
	defer stopW()
	before := clearsOf(n)
	var at, last string
	var cut int64
	var stopT func() int
	if n.proxy != nil {
		heal, _ := r.away(n)
		at = newestID(s, key)
		sleepCtx(ctx, awayFor)
		last = newestID(s, key)
		if round%2 == 0 {
			out, _ := s.Do("XTRIM", key, "MINID", last)
			cut, _ = strconv.ParseInt(out, 10, 64)
		}
		stopT = r.trimLoop(s, key)
		heal()
	} else {
		sleepCtx(ctx, awayFor) // the short-window writer writes and trims
		stopT = r.trimLoop(s, key)
		// Every entry, in the MULTI that closes the subscriptions there:
		// each of their cursors is gone (a node subscribed on another
		// server may have seen newer entries first, and catch up).
		if cut, err = r.killWith(ctx, s, "XTRIM", key, "MAXLEN", "0"); err != nil {
			stopT()
			return "trim", err.Error()
		}
	}
	sleepCtx(ctx, awayFor)
	trimmed := stopT()
	how := "to its newest entry"
	switch {
	case n.proxy == nil:
		how = "to nothing (MAXLEN 0)"
	case round%2 == 1:
		how = "only by the trimming"
	}
	desc := fmt.Sprintf("writer with ReplayWindow %v; log cut %s (%d entries) while %s; %d more trimmed during the catch-ups",
		trimWindow, how, cut, r.awayText(n), trimmed)
	if round%2 == 1 && n.proxy != nil {
		return desc, "" // the cursor may outlive the catch-up: no clear to check
	}
	return desc, r.awayCheck(n, before, at != last, "its cursor was trimmed")
}

// trimLoop trims the log to MINID ~ (now - trimWindow/2) every 50ms until
// the returned stop, which returns the entries trimmed.
func (r *run) trimLoop(s *redisserver.Server, key string) (stop func() int) {
	done := make(chan struct{})
	total := make(chan int)
	go func() {
		trimmed := 0
		for {
			minID := strconv.FormatInt(time.Now().Add(-trimWindow/2).UnixMilli(), 10)
			if out, err := s.Do("XTRIM", key, "MINID", "~", minID); err == nil {
				k, _ := strconv.Atoi(out)
				trimmed += k
			}
			select {
			case <-done:
				total <- trimmed
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return func() int { close(done); return <-total }
}

// killWith runs cmd and CLIENT KILL TYPE pubsub in one MULTI on the log's
// server s, so the subscriptions there close with cursors at most the log's
// state before cmd, then closes the subscriptions on the other data
// servers. It returns cmd's integer reply.
func (r *run) killWith(ctx context.Context, s *redisserver.Server, cmd ...any) (int64, error) {
	c := goredis.NewClient(&goredis.Options{Addr: s.Addr(), Protocol: 2, DisableIdentity: true, MaxRetries: -1})
	defer c.Close()
	var res *goredis.Cmd
	_, err := c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		res = p.Do(ctx, cmd...)
		p.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub")
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("MULTI %v + CLIENT KILL TYPE pubsub: %w", cmd[0], err)
	}
	for _, d := range r.dataNodes() {
		if d != s {
			d.Do("CLIENT", "KILL", "TYPE", "pubsub")
		}
	}
	return res.Int64()
}

// awayText says who was away.
func (r *run) awayText(n *node) string {
	if n.proxy != nil {
		return fmt.Sprintf("node %d was away %v", n.id, awayFor)
	}
	return "every subscription was closed"
}

// awayCheck is the self-check of a fault whose log change must make the
// away node clear: on Standalone when changed (the log took entries while
// the node was away, so the change lies after its cursor); elsewhere the
// nodes must have resubscribed.
func (r *run) awayCheck(n *node, before uint64, changed bool, why string) string {
	if n.proxy == nil {
		return ""
	}
	if !changed {
		return "no entry was logged while the node was away"
	}
	return mustClear(n, before, why)
}

// rdb: SAVE, a second of writes, SIGKILL, restart from the snapshot: the log
// lost its tail. On a cluster the master's replica is told not to fail over
// (cluster-replica-no-failover), so the restarted master keeps the slot.
func (r *run) rdb(ctx context.Context, n *node) (string, string) {
	m, slot, err := r.channelMaster()
	if err != nil {
		return "rdb", err.Error()
	}
	key := r.logKey("log")
	var rep *redisserver.Server
	if r.cl != nil {
		if rep, err = r.replicaOf(m); err != nil {
			return "rdb", err.Error()
		}
		if _, err := rep.Do("CONFIG", "SET", "cluster-replica-no-failover", "yes"); err != nil {
			return "rdb", fmt.Sprintf("CONFIG SET on the replica: %v", err)
		}
		defer rep.Do("CONFIG", "SET", "cluster-replica-no-failover", "no")
	}
	cl0 := make([]uint64, len(r.nodes))
	for i, n := range r.nodes {
		cl0[i] = clearsOf(n)
	}
	gaps := r.allGaps()
	heal := func() {}
	if n.proxy != nil {
		// Away from before the snapshot: its cursor survives the restart,
		// the entries it missed after the snapshot do not (issue 18 case 4).
		heal, _ = r.away(n)
		defer heal()
		sleepCtx(ctx, 200*time.Millisecond)
	}
	if _, err := m.Do("SAVE"); err != nil {
		return "rdb", fmt.Sprintf("SAVE: %v", err)
	}
	saved := newestID(m, key)
	sleepCtx(ctx, rdbTail)
	lost := newestID(m, key)
	m.Kill()
	if err := m.Restart(); err != nil {
		return "rdb", fmt.Sprintf("restart: %v", err)
	}
	if r.cl != nil {
		wctx, cancel := context.WithTimeout(ctx, topoTimeout)
		_, err := r.cl.WaitFailover(wctx, slot) // the slot served again
		cancel()
		if err != nil {
			return "rdb", fmt.Sprintf("slot %d not served after the restart: %v", slot, err)
		}
	}
	heal()
	desc := fmt.Sprintf("%s: SAVE, %v of writes, SIGKILL, restarted from the snapshot", m.Addr(), rdbTail)
	if n.proxy != nil {
		desc += fmt.Sprintf(" (node %d away from before the SAVE to the restart)", n.id)
	}
	if saved == lost {
		return desc, "no entry was logged between the snapshot and the kill"
	}
	if out, err := m.Do("XRANGE", key, lost, lost); err != nil || out != "" {
		return desc, fmt.Sprintf("the log's last entry before the kill (%s) survived the restart (%q, %v)", lost, out, err)
	}
	desc += fmt.Sprintf(" (entries after %s lost)", saved)
	if r.srv == nil {
		// Classic cluster nodes subscribed elsewhere keep their link.
		return desc, ""
	}
	if !r.waitGapsAbove(gaps, r.nodes, checkWait) {
		return desc, "not every node resubscribed"
	}
	for i, n := range r.nodes {
		if p := mustClear(n, cl0[i], "the restart from a snapshot"); p != "" {
			return desc, p
		}
	}
	return desc + "; every node cleared", ""
}

// oom: maxmemory 1 byte with noeviction for a few seconds: the log refuses
// XADD, writers publish without it and leave the unlogged mark; a node away
// meanwhile must clear.
func (r *run) oom(ctx context.Context, n *node) (string, string) {
	s, err := r.logServer()
	if err != nil {
		return "oom", err.Error()
	}
	mark := r.logKey("unlogged")
	before := clearsOf(n)
	heal, err := r.away(n)
	if err != nil {
		return "oom", err.Error()
	}
	m0 := getOr(s, mark)
	if _, err := s.Do("CONFIG", "SET", "maxmemory-policy", "noeviction", "maxmemory", "1"); err != nil {
		heal()
		return "oom", fmt.Sprintf("CONFIG SET maxmemory: %v", err)
	}
	t0 := time.Now()
	marked := poll(oomFor, func() bool { return getOr(s, mark) != m0 })
	sleepCtx(ctx, awayFor-time.Since(t0))
	heal()
	sleepCtx(ctx, oomFor-time.Since(t0))
	_, rerr := s.Do("CONFIG", "SET", "maxmemory", "0")
	desc := fmt.Sprintf("maxmemory 1 (noeviction) for %v on %s while %s", time.Since(t0).Round(100*time.Millisecond), s.Addr(), r.awayText(n))
	if rerr != nil {
		return desc, fmt.Sprintf("CONFIG SET maxmemory 0: %v", rerr)
	}
	return r.markCheck(desc, marked, n, before)
}

// markCheck is the self-check of a fault whose publishes bypass the log:
// they left the unlogged mark, and the away node cleared.
func (r *run) markCheck(desc string, marked bool, n *node, before uint64) (string, string) {
	if !marked {
		return desc, "no publish left the unlogged mark"
	}
	return desc + "; unlogged mark set", r.awayCheck(n, before, true, "an unlogged publish while it was away")
}

// xdel: an operator XDELs log entries while a node is away: the entry that
// was newest when it left (likely its cursor), one in the middle and the
// newest; every other round the cursor entry is deleted and the log then
// trimmed past it (trimming does not move max-deleted-entry-id). On a
// cluster the newest entry is deleted in the same MULTI as the
// subscriptions on the master are closed, so it lies at or after their
// cursors.
func (r *run) xdel(ctx context.Context, round int, n *node) (string, string) {
	s, err := r.logServer()
	if err != nil {
		return "xdel", err.Error()
	}
	key := r.logKey("log")
	if n.proxy == nil {
		return r.xdelCluster(ctx, s, key)
	}
	before := clearsOf(n)
	heal, _ := r.away(n)
	at := newestID(s, key)
	sleepCtx(ctx, awayFor)
	last := newestID(s, key)
	var desc string
	if round%2 == 0 {
		ids := []string{at, last}
		if out, err := s.Do("XRANGE", key, at, last); err == nil {
			var all []string
			for _, l := range strings.Split(out, "\n") {
				if strings.Count(l, "-") == 1 && l[0] >= '0' && l[0] <= '9' {
					all = append(all, l)
				}
			}
			if len(all) > 2 {
				ids = append(ids, all[len(all)/2])
			}
		}
		k, _ := s.Do(append([]string{"XDEL", key}, ids...)...)
		desc = fmt.Sprintf("XDEL of %s entries (%s) while %s", k, strings.Join(ids, " "), r.awayText(n))
	} else {
		k, _ := s.Do("XDEL", key, at)
		cut, _ := s.Do("XTRIM", key, "MINID", last)
		desc = fmt.Sprintf("XDEL of %s entry (%s, newest when the node left), then XTRIM MINID %s cut %s, while %s", k, at, last, cut, r.awayText(n))
	}
	heal()
	return desc, r.awayCheck(n, before, at != last, "entries after its cursor were deleted")
}

func (r *run) xdelCluster(ctx context.Context, s *redisserver.Server, key string) (string, string) {
	// A MULTI cannot read: delete the id read just before; an entry added
	// in between only makes the delete land before some cursors.
	k, err := r.killWith(ctx, s, "XDEL", key, newestID(s, key))
	if err != nil {
		return "xdel", err.Error()
	}
	desc := fmt.Sprintf("XDEL of the newest entry (%d deleted) and CLIENT KILL TYPE pubsub in one MULTI on %s, then on the other servers", k, s.Addr())
	if k != 1 {
		return desc, "no entry deleted"
	}
	return desc, ""
}

// unlogged: while a node is away, a writer with DisableReplay writes (its
// publishes leave the unlogged mark) and raw keys are PUBLISHed, as
// `redis-cli PUBLISH` would. The raw keys change nothing in the database: a
// raw PUBLISH reaches only the nodes connected at that moment (documented),
// so a database change announced that way is outside the bound by design.
func (r *run) unlogged(ctx context.Context, n *node) (string, string) {
	s, err := r.logServer()
	if err != nil {
		return "unlogged", err.Error()
	}
	mark := r.logKey("unlogged")
	stopW, err := r.extraWriter(func(c *config.RedisInvalidationConfig) { c.DisableReplay = true })
	if err != nil {
		return "unlogged", fmt.Sprintf("DisableReplay writer: %v", err)
	}
	before := clearsOf(n)
	heal, err := r.away(n)
	if err != nil {
		stopW()
		return "unlogged", err.Error()
	}
	m0 := getOr(s, mark)
	raw := 0
	for t0 := time.Now(); time.Since(t0) < awayFor && ctx.Err() == nil; raw++ {
		if _, err := s.Do("PUBLISH", r.channel, r.db.Key(raw%r.db.Len())); err != nil {
			break
		}
		sleepCtx(ctx, 50*time.Millisecond)
	}
	marked := getOr(s, mark) != m0
	heal()
	stopW()
	desc := fmt.Sprintf("a DisableReplay writer at %d writes/s and %d raw PUBLISHes while %s", extraRate, raw, r.awayText(n))
	return r.markCheck(desc, marked, n, before)
}

// poison: the log key is replaced by a wrong-type key (SET) or given an
// entry of the maximum id (XADD), alternately, while a node is away; the
// next publish must replace the log under a new epoch.
func (r *run) poison(ctx context.Context, round int, n *node) (string, string) {
	s, err := r.logServer()
	if err != nil {
		return "poison", err.Error()
	}
	key, epoch := r.logKey("log"), r.logKey("epoch")
	before := clearsOf(n)
	heal, err := r.away(n)
	if err != nil {
		return "poison", err.Error()
	}
	e0 := getOr(s, epoch)
	how := "SET " + key + " (wrong type)"
	if round%2 == 0 {
		_, err = s.Do("SET", key, "poison")
	} else {
		how = "XADD " + key + " " + maxStreamID
		_, err = s.Do("XADD", key, maxStreamID, "p", "x")
	}
	if err != nil {
		heal()
		return how, fmt.Sprintf("%s: %v", how, err)
	}
	reset := poll(checkWait, func() bool {
		t, _ := s.Do("TYPE", key)
		return getOr(s, epoch) != e0 && t == "stream" && newestID(s, key) != maxStreamID
	})
	sleepCtx(ctx, awayFor)
	heal()
	desc := fmt.Sprintf("%s while %s", how, r.awayText(n))
	if !reset {
		return desc, "the log was not replaced under a new epoch"
	}
	return desc + "; log replaced under a new epoch", r.awayCheck(n, before, true, "the log was replaced")
}
