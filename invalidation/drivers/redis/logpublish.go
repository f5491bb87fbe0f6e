package redis

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// logMaxEntries caps the replay log's entries whatever ReplayWindow and
// MaxLogBytes say (trimmed approximately, by whole stream nodes: it may
// hold slightly more).
const logMaxEntries = 1_000_000

// maxCallBytes bounds the payload bytes of one script call: a batch larger
// than that is split into several calls sent in one pipeline, so that Redis
// runs the first call while it still reads the next ones and the
// subscribers receive the first messages early (one call holding the whole
// batch serializes reading, running and delivering it).
const maxCallBytes = 128 << 10

// LogStats counts what the driver's publishes did to the replay log. A
// writer whose log writes Redis refuses keeps publishing (outside the log,
// with the unlogged mark): these counters and the Warn lines on the
// driver's logger are how an operator sees it.
type LogStats struct {
	// Unlogged counts payloads published outside the log: every payload
	// with DisableReplay, else those whose log write Redis refused (OOM
	// at maxmemory, NOPERM for XADD, ...). A replica away at that moment
	// clears instead of catching up (the unlogged mark).
	Unlogged uint64
	// Unmarked counts the unlogged payloads whose mark could not be set
	// either (the user may not run scripts or write the mark's key):
	// a replica away at that moment may catch up without them.
	Unmarked uint64
	// LogResets counts the times this driver replaced the log under a new
	// epoch because it could not be used (a key of the wrong type, ids
	// exhausted: every replica then clears once), or cut it with a
	// barrier because its history was not proven (a restart without AOF
	// appendfsync always, a failover: replicas whose cursor is before the
	// barrier clear once).
	LogResets uint64
	// PublishErrors counts publishes that returned an error (the engine's
	// outbox retries them).
	PublishErrors uint64
}

// driverStats are the counters behind LogStats.
type driverStats struct {
	unlogged, unmarked, logResets, publishErrors atomic.Uint64
}

// LogStats returns a snapshot of the driver's log counters.
func (d *Driver) LogStats() LogStats {
	return LogStats{
		Unlogged: d.stats.unlogged.Load(), Unmarked: d.stats.unmarked.Load(),
		LogResets: d.stats.logResets.Load(), PublishErrors: d.stats.publishErrors.Load(),
	}
}

// warnEvery spaces the Warn lines of one kind.
const warnEvery = 10 * time.Second

// warner spaces Warn lines per kind, so a failing writer reports without
// flooding its log.
type warner struct {
	mu   sync.Mutex
	last map[string]time.Time // guarded by mu: monotonic readings
}

// warn logs msg at Warn unless a line of the same kind was logged within
// warnEvery.
func (d *Driver) warn(kind, msg string, args ...any) {
	now := time.Now()
	d.warned.mu.Lock()
	if last, ok := d.warned.last[kind]; ok && now.Sub(last) < warnEvery {
		d.warned.mu.Unlock()
		return
	}
	if d.warned.last == nil {
		d.warned.last = map[string]time.Time{}
	}
	d.warned.last[kind] = now
	d.warned.mu.Unlock()
	d.log.Warn(msg, append(args, "channel", d.channel)...)
}

// logReset counts and reports a log replaced under a new epoch.
func (d *Driver) logReset(epoch, why string) {
	d.stats.logResets.Add(1)
	d.log.Warn("redis: the replay log was replaced under a new epoch, or cut by a barrier after a restart or failover; replicas whose cursor is before it clear once instead of catching up",
		"channel", d.channel, "epoch", epoch, "why", why)
}

// sendLogged publishes payloads through the publish script, in one round
// trip: one script call, or a pipeline of calls of at most maxCallBytes
// each (in order, on the node that owns the channel's slot). Payloads
// whose log write Redis refused are then published outside the log, with
// the unlogged mark (a second round trip, only on failure).
func (d *Driver) sendLogged(ctx context.Context, payloads [][]byte) error {
	if len(payloads) == 0 {
		return nil
	}
	groups := [][][]byte{payloads} // the common case: one call
	if payloadBytes(payloads) > maxCallBytes {
		groups = splitCalls(payloads)
	}
	cmds := make([]*goredis.Cmd, len(groups))
	if len(groups) == 1 {
		cmds[0] = publishScript.Run(ctx, d.hub.pub, d.logKeys, d.scriptArgs(groups[0])...)
	} else {
		_, _ = d.hub.pub.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for i, g := range groups {
				cmds[i] = publishScript.EvalSha(ctx, p, d.logKeys, d.scriptArgs(g)...)
			}
			return nil
		})
		for i, cmd := range cmds {
			// Redis lost its script cache (a restart, SCRIPT FLUSH): the
			// calls that failed ran nothing; send them again, loading the
			// script.
			if isNoScript(cmd.Err()) {
				cmds[i] = publishScript.Run(ctx, d.hub.pub, d.logKeys, d.scriptArgs(groups[i])...)
			}
		}
	}
	var refused [][]byte // payloads the log refused, in order
	var cause error
	for i, cmd := range cmds {
		v, err := cmd.Result()
		if err != nil {
			if !canBypassLog(err) {
				return fmt.Errorf("redis: publish (replay log script): %w", err)
			}
			refused, cause = append(refused, groups[i]...), err
			continue
		}
		r, ok := v.([]any)
		if !ok {
			continue // the epoch: all sent and logged
		}
		ep, _ := r[0].(string)
		sent, _ := r[1].(int64)
		xerr, _ := r[2].(string)
		if why, _ := r[3].(string); why != "" {
			d.logReset(ep, why)
		}
		if int(sent) < len(groups[i]) {
			refused, cause = append(refused, groups[i][sent:]...), fmt.Errorf("%s", xerr)
		}
	}
	if len(refused) == 0 {
		return nil
	}
	return d.sendUnlogged(ctx, refused, cause)
}

// payloadBytes is the summed length of payloads.
func payloadBytes(payloads [][]byte) int {
	n := 0
	for _, p := range payloads {
		n += len(p)
	}
	return n
}

// splitCalls splits payloads into groups of at most maxCallBytes each (a
// larger payload alone), one script call per group.
func splitCalls(payloads [][]byte) [][][]byte {
	var groups [][][]byte
	for start := 0; start < len(payloads); {
		end, size := start, 0
		for end < len(payloads) && (end == start || size+len(payloads[end]) <= maxCallBytes) {
			size += len(payloads[end])
			end++
		}
		groups = append(groups, payloads[start:end])
		start = end
	}
	return groups
}

// canBypassLog reports a refusal of the log script after which a plain
// PUBLISH may still pass: out of memory (a write refused), a permission the
// user lacks, a key of the wrong type, another error reply from the
// script. Not a replica's READONLY, a loading or failing-over server, a
// busy script or a network error: those are retried, not bypassed (a
// PUBLISH on a replica reaches only that replica's subscribers).
func canBypassLog(err error) bool {
	if !isReplyError(err) {
		return false
	}
	msg := err.Error()
	for _, p := range []string{"OOM", "NOPERM", "WRONGTYPE", "ERR"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}

// scriptArgs is ARGV of the publish script for payloads.
func (d *Driver) scriptArgs(payloads [][]byte) []any {
	args := make([]any, 0, 6+len(payloads))
	args = append(args, newEpoch(), d.window.Milliseconds(), logMaxEntries, d.channel, d.pubMode(), d.maxLogBytes)
	for _, p := range payloads {
		args = append(args, p)
	}
	return args
}

func (d *Driver) pubMode() string {
	if d.sharded {
		return "s"
	}
	return "p"
}

// markDeniedFor is how long a driver whose user may not run the unlogged
// script publishes plainly before it tries the script again.
const markDeniedFor = time.Minute

// sendUnlogged publishes payloads outside the log, envelopes bare (a
// receiver knows from the missing frame that they are not in the log), and
// sets the unlogged mark in the same script, so that a replica away now
// clears instead of catching up. cause is why the log refused them (nil
// with DisableReplay). When the script cannot run either, the payloads are
// published plainly, counted as unmarked and reported.
func (d *Driver) sendUnlogged(ctx context.Context, payloads [][]byte, cause error) error {
	n := uint64(len(payloads))
	var markErr error
	if !d.markDenied() {
		args := make([]any, 0, 3+len(payloads))
		args = append(args, newEpoch(), d.channel, d.pubMode())
		for _, p := range payloads {
			args = append(args, p)
		}
		v, err := unloggedScript.Run(ctx, d.hub.pub, []string{d.markKey}, args...).Text()
		switch {
		case err == nil && v == "":
			d.stats.unlogged.Add(n)
			if cause != nil {
				d.warn("unlogged", "redis: Redis refused the replay log's write: published outside the log, with the unlogged mark (replicas away now clear instead of catching up)",
					"err", cause, "payloads", n)
			}
			return nil
		case err == nil:
			markErr = fmt.Errorf("%s", v) // published, not marked
		case !canBypassLog(err):
			return fmt.Errorf("redis: publish (unlogged): %w", err)
		default:
			markErr = err
			if strings.HasPrefix(err.Error(), "NOPERM") {
				d.denyMark()
			}
			if err := d.publishPlain(ctx, payloads); err != nil {
				return err
			}
		}
	} else if err := d.publishPlain(ctx, payloads); err != nil {
		return err
	} else {
		markErr = fmt.Errorf("the unlogged script was refused within the last %v", markDeniedFor)
	}
	d.stats.unlogged.Add(n)
	d.stats.unmarked.Add(n)
	d.warn("unmarked", "redis: published outside the replay log without the unlogged mark: a replica away now may catch up without these messages; let the user run EVALSHA and SET on the log's unlogged-mark key",
		"err", markErr, "log_err", cause, "payloads", n, "key", d.markKey)
	return nil
}

func (d *Driver) markDenied() bool {
	until := d.markDeniedUntil.Load()
	return until != nil && time.Now().Before(*until)
}

func (d *Driver) denyMark() {
	until := time.Now().Add(markDeniedFor)
	d.markDeniedUntil.Store(&until)
}
