package redis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/wire"
	"github.com/halilbulentorhon/invacache-go/invalidation"
)

// replayChunk is how many entries Replay reads per round trip: a backlog is
// never held in memory whole.
const replayChunk = 512

// replayTimeout bounds each round trip of LogHead and Replay: they run on
// the subscription's delivery goroutine.
const replayTimeout = 10 * time.Second

// logKeys returns the keys of the replay log of channel: the stream, the
// epoch, the meta hash, the byte checkpoints, the unlogged mark and the byte
// count (see logscripts.go), all in
// the cluster hash slot of the channel, so that the scripts (which also
// PUBLISH or SPUBLISH to the channel) run on the node that owns the
// channel's slot. A channel with a hash tag keeps it; a channel without one
// is wrapped in braces; a channel whose braces make wrapping impossible
// ("a}b") gets a numbered suffix chosen so that the key's slot equals the
// channel's.
func logKeys(channel string) []string {
	return []string{logKey(channel, "log"), logKey(channel, "epoch"), logKey(channel, "meta"), logKey(channel, "ckpt"),
		logKey(channel, "unlogged"), logKey(channel, "bytes")}
}

func logKey(channel, suffix string) string {
	if hashTag(channel) != channel || !strings.Contains(channel, "}") {
		if hashTag(channel) != channel {
			// Appending keeps the channel's own (first) hash tag.
			return channel + ":" + suffix
		}
		// No tag and no '}': the braces make the whole channel the tag.
		return "{" + channel + "}:" + suffix
	}
	// No tag, but a '}' that would end one early: the key is hashed whole
	// (the suffix adds no brace, so it adds no tag), so search a suffix
	// whose CRC lands in the channel's slot. Deterministic: every node
	// finds the same key.
	want := keySlot(channel)
	for i := 0; ; i++ {
		k := channel + ":" + suffix + ":" + strconv.Itoa(i)
		if keySlot(k) == want {
			return k
		}
	}
}

// hashTag returns what Redis Cluster hashes for key: the text between the
// first '{' and the first '}' after it when that is not empty, else key.
func hashTag(key string) string {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			return key[i+1 : i+1+j]
		}
	}
	return key
}

// keySlot is Redis Cluster's hash slot of key: CRC16 (XMODEM) of its hash
// tag, modulo 16384.
func keySlot(key string) int {
	var crc uint16
	for _, b := range []byte(hashTag(key)) {
		crc ^= uint16(b) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) & 16383
}

func newEpoch() string { return fmt.Sprintf("%016x", rand.Uint64()) }

var _ invalidation.Replayer = (*Driver)(nil)

// LogHead returns the replay log's epoch and last id, creating the log (with
// a new epoch) when it does not exist, replacing it under a new epoch when
// it cannot be used (a key of the wrong type), and setting a barrier that
// fails every catch-up from before it when its history is not proven (the
// server restarted or failed over without AOF appendfsync always: see
// luaRunCheck). It reads on the publish client, never on the
// subscription connection. With DisableReplay it returns an error wrapping
// invalidation.ErrReplayDisabled.
func (d *Driver) LogHead(ctx context.Context) (invalidation.LogPos, error) {
	if d.noReplay {
		return invalidation.LogPos{}, fmt.Errorf("redis: LogHead: %w", invalidation.ErrReplayDisabled)
	}
	ctx, cancel := context.WithTimeout(ctx, replayTimeout)
	defer cancel()
	v, err := d.runTrusted(ctx, headScript, 1, newEpoch(), "?")
	if err != nil {
		return invalidation.LogPos{}, fmt.Errorf("redis: read the replay log's head: %w", err)
	}
	if len(v) != 3 {
		return invalidation.LogPos{}, fmt.Errorf("redis: read the replay log's head: %d values, want 3", len(v))
	}
	ep, _ := v[0].(string)
	ids, _ := v[1].(string)
	id, ok := wire.ParseLogID(ids)
	if !ok {
		return invalidation.LogPos{}, fmt.Errorf("redis: read the replay log's head: bad id %q", ids)
	}
	if why, _ := v[2].(string); why != "" {
		d.logReset(ep, why)
	}
	d.noteAdded(ep, 0)
	return invalidation.LogPos{Epoch: ep, ID: id}, nil
}

// runTrusted runs a script that may reply {'ask'} (luaRunCheck): then it
// asks the server whether its AOF is fsynced at every write and runs the
// script again with the answer in ARGV[trust] ("always" or "no").
func (d *Driver) runTrusted(ctx context.Context, s *goredis.Script, trust int, args ...any) ([]any, error) {
	for {
		v, err := s.Run(ctx, d.hub.pub, d.logKeys, args...).Slice()
		if err != nil {
			return nil, err
		}
		if len(v) != 1 || v[0] != "ask" || args[trust] != "?" {
			return v, nil
		}
		args[trust] = d.fsyncPolicy(ctx)
	}
}

// fsyncPolicy returns "always" when the log's server writes its AOF with
// appendfsync always, else "no" (also when CONFIG is not permitted).
func (d *Driver) fsyncPolicy(ctx context.Context) string {
	var c goredis.Cmdable = d.hub.pub
	if cc, ok := d.hub.pub.(*goredis.ClusterClient); ok {
		node, err := cc.MasterForKey(ctx, d.streamKey)
		if err != nil {
			return "no"
		}
		c = node
	}
	m, err := c.ConfigGet(ctx, "appendfsync").Result()
	if err != nil || m["appendfsync"] != "always" {
		return "no"
	}
	return "always"
}

// noteAdded remembers the greatest entries-added seen in epoch and reports
// whether added went backwards (a promoted replica that lost the tail).
func (d *Driver) noteAdded(epoch string, added int64) (backwards bool) {
	d.addedMu.Lock()
	defer d.addedMu.Unlock()
	if epoch != d.addedEpoch {
		d.addedEpoch, d.added = epoch, added
		return false
	}
	if added < d.added {
		return true
	}
	d.added = added
	return false
}

// errGap builds an error wrapping invalidation.ErrNoContinuity.
func errGap(format string, args ...any) error {
	return fmt.Errorf("redis: replay: %s: %w", fmt.Sprintf(format, args...), invalidation.ErrNoContinuity)
}

// chunk is one read of a catch-up.
type chunk struct {
	head    invalidation.LogID // the log's last id when the catch-up started
	added   int64              // entries-added
	entries []goredis.XMessage // after the cursor, at most replayChunk
}

// readChunk reads the entries after cur up to head (the log's last id when
// head is ""), proving that they start right after cur (see chunkScript).
func (d *Driver) readChunk(ctx context.Context, epoch string, cur invalidation.LogID, head string) (chunk, error) {
	ctx, cancel := context.WithTimeout(ctx, replayTimeout)
	defer cancel()
	v, err := d.runTrusted(ctx, chunkScript, 4, epoch, cur.String(), head, replayChunk, "?")
	if err != nil {
		return chunk{}, fmt.Errorf("redis: replay: read the log after %s: %w", cur, err)
	}
	return parseChunk(v)
}

// parseChunk decodes chunkScript's reply.
func parseChunk(v []any) (chunk, error) {
	bad := func() (chunk, error) {
		return chunk{}, fmt.Errorf("redis: replay: unexpected reply %.200v", v)
	}
	if len(v) == 2 && v[0] == "gap" {
		return chunk{}, errGap("%v", v[1])
	}
	if len(v) != 4 || v[0] != "ok" {
		return bad()
	}
	hs, _ := v[1].(string)
	head, ok := wire.ParseLogID(hs)
	added, ok2 := v[2].(int64)
	raw, ok3 := v[3].([]any)
	if !ok || !ok2 || !ok3 {
		return bad()
	}
	c := chunk{head: head, added: added, entries: make([]goredis.XMessage, 0, len(raw))}
	for _, e := range raw {
		ev, _ := e.([]any)
		if len(ev) != 2 {
			return bad()
		}
		id, _ := ev[0].(string)
		kv, _ := ev[1].([]any)
		m := goredis.XMessage{ID: id, Values: make(map[string]any, len(kv)/2)}
		for i := 0; i+1 < len(kv); i += 2 {
			k, _ := kv[i].(string)
			m.Values[k] = kv[i+1]
		}
		c.entries = append(c.entries, m)
	}
	return c, nil
}

// Replay calls fn for every entry of the log after `after`, up to the log's
// last id when it starts, in chunks of 512 read on the publish client. Each
// chunk is read by one script that first proves it starts at the cursor
// (see chunkScript): the epoch key holds after.Epoch, no entry after the
// cursor was deleted, and the cursor's own entry is still in the log, which
// proves that trimming has not passed it (also between two chunks) and
// that a promoted replica did not lose it with the log's tail. The first
// chunk also checks the log's history (no restart or failover without
// proven history after the cursor: luaRunCheck), the unlogged mark (no
// message published outside the log after the cursor's entry) and that the
// stream's entries-added did not go backwards since this driver last
// looked. Where the proof fails, Replay returns an
// error wrapping invalidation.ErrNoContinuity (without calling fn, when
// the first chunk fails). An entry without a payload or an id not after the
// previous one is a gap too. A network error on the first read that failed
// fast (a refused dial, a dead pooled connection) is retried for up to
// 750ms (the map reloaded on a cluster) before it is returned. With
// DisableReplay it returns an error wrapping invalidation.ErrReplayDisabled.
func (d *Driver) Replay(ctx context.Context, after invalidation.LogPos, fn func(pos invalidation.LogPos, payload []byte) error) (invalidation.LogPos, error) {
	if d.noReplay {
		return after, fmt.Errorf("redis: Replay: %w", invalidation.ErrReplayDisabled)
	}
	c, err := d.readChunk(ctx, after.Epoch, after.ID, "")
	for wait := replayRetryMin; err != nil && wait <= replayRetryMax && isTransient(ctx, err); wait *= 2 {
		// A resubscribe after a failover or a restart finds the publish
		// client with pooled connections to the dead server (EOF) and, on
		// a cluster, a slot map that may still name it: a failed read
		// proves no loss, so reload the map and ask again before the
		// engine clears.
		d.hub.refreshTopology()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		c, err = d.readChunk(ctx, after.Epoch, after.ID, "")
	}
	if err != nil {
		return after, err
	}
	if d.noteAdded(after.Epoch, c.added) {
		return after, errGap("the log's entries-added went backwards to %d (a failover lost the log's tail?)", c.added)
	}
	head, last := c.head, after
	for {
		for _, m := range c.entries {
			id, ok := wire.ParseLogID(m.ID)
			if !ok || id.Compare(last.ID) <= 0 {
				return last, errGap("log entry id %q is not after %s", m.ID, last.ID)
			}
			pos := invalidation.LogPos{Epoch: after.Epoch, ID: id}
			p, ok := m.Values["p"].(string)
			if !ok {
				if _, marker := m.Values["i"]; marker {
					last = pos // the log's first entry (see luaInit)
					continue
				}
				return last, errGap("log entry %s has no payload", m.ID)
			}
			if err := fn(pos, []byte(p)); err != nil {
				return last, fmt.Errorf("redis: replay: entry %s: %w", m.ID, err)
			}
			last = pos
		}
		if last.ID.Compare(head) >= 0 {
			return last, nil
		}
		if len(c.entries) == 0 {
			return last, errGap("the log ends at %s, before its head %s when the replay started", last.ID, head)
		}
		if c, err = d.readChunk(ctx, after.Epoch, last.ID, head.String()); err != nil {
			return last, err
		}
	}
}

// The retries of a replay's first read after a network error: 50, 100,
// 200 and 400ms apart (750ms in all).
const (
	replayRetryMin = 50 * time.Millisecond
	replayRetryMax = 400 * time.Millisecond
)

// isTransient reports an error of reading the log that failed fast and may
// pass: a refused dial or a dead pooled connection, not a proven gap, not an
// error reply (but READONLY: the log read on a demoted master), not a timeout (a stuck link already took its full timeout:
// retrying it would hold the subscription that long again), and ctx still
// live.
func isTransient(ctx context.Context, err error) bool {
	var ne net.Error
	readonly := isReplyError(err) && strings.Contains(err.Error(), "READONLY") // read on a replica: a stale map
	return ctx.Err() == nil && !errors.Is(err, invalidation.ErrNoContinuity) && (!isReplyError(err) || readonly) &&
		!errors.Is(err, context.DeadlineExceeded) && !(errors.As(err, &ne) && ne.Timeout())
}

// probe checks, when Redis answers, that the user may run every command
// the driver will use on the channel's node, so that a forbidden command
// fails New (and NewCache) with an error naming it, instead of every
// publish. It queues the commands in a MULTI and DISCARDs it: Redis checks
// each command's ACL (command, keys, channel) when it queues it, and runs
// none. An unreachable Redis is not an error: the driver connects later.
// A user who may not run MULTI gets the head script run instead (it writes
// only a missing log).
func (d *Driver) probe() error {
	ctx, cancel := context.WithTimeout(context.Background(), d.dialTimeout)
	defer cancel()
	var node *goredis.Client
	switch c := d.hub.pub.(type) {
	case *goredis.Client:
		node = c
	case *goredis.ClusterClient:
		n, err := c.MasterForKey(ctx, d.streamKey)
		if err != nil {
			return nil // not reachable now: nothing to learn
		}
		node = n
	default:
		return nil
	}
	pub := "PUBLISH"
	if d.sharded {
		pub = "SPUBLISH"
	}
	// The commands the driver runs, directly or in its scripts.
	need := [][]any{{pub, d.channel, "probe"}}
	if !d.noReplay {
		s, e, m, k, u, b := d.logKeys[0], d.logKeys[1], d.logKeys[2], d.logKeys[3], d.logKeys[4], d.logKeys[5]
		need = append(need,
			[]any{"EVALSHA", strings.Repeat("0", 40), "0"}, []any{"EVAL", "return 1", "0"},
			[]any{"XADD", s, "*", "p", "x"}, []any{"XTRIM", s, "MAXLEN", "~", "1"}, []any{"XRANGE", s, "-", "+"},
			[]any{"XINFO", "STREAM", s}, []any{"EXISTS", s}, []any{"TYPE", s}, []any{"DEL", s},
			[]any{"MGET", e, u, b}, []any{"SET", e, "x"}, []any{"SET", u, "x"}, []any{"SET", b, "x"},
			[]any{"HGET", m, "run"}, []any{"HSET", m, "run", "x"}, []any{"HDEL", m, "brk"},
			[]any{"RPUSH", k, "x"}, []any{"LPOP", k}, []any{"LINDEX", k, "0"},
			[]any{"INFO", "server"})
	}
	conn := node.Conn()
	defer conn.Close()
	// MULTI alone first: were it refused, the commands below would run.
	if err := conn.Do(ctx, "MULTI").Err(); err != nil {
		if d.noReplay || !strings.HasPrefix(err.Error(), "NOPERM") {
			return nil // not reachable now (or closing): nothing to learn
		}
		// No MULTI: check what reading the head runs (the scripts).
		if _, err := d.LogHead(ctx); err != nil && strings.Contains(err.Error(), "NOPERM") {
			return fmt.Errorf("redis: the replay log needs permissions the Redis user lacks: %v; grant MULTI and DISCARD (to check them all), EVALSHA, EVAL and the commands the log runs (see the package doc), or set DisableReplay: %w",
				err, ErrReplayPermission)
		}
		return nil
	}
	cmds, err := conn.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, args := range need {
			p.Do(ctx, args...)
		}
		p.Do(ctx, "DISCARD")
		return nil
	})
	if err != nil && !isReplyError(err) {
		return nil // not reachable now (or closing): nothing to learn
	}
	var denied []string
	for i, cmd := range cmds[:len(cmds)-1] {
		err := cmd.Err()
		switch {
		case err == nil || !strings.HasPrefix(err.Error(), "NOPERM"):
		case i == 0 && strings.Contains(err.Error(), "channels"):
			// A refused channel fails its own subscriptions (and so
			// NewCache) and is retried until allowed: see ErrNoPermission.
		case i == 0:
			return fmt.Errorf("redis: the Redis user may not run %s (%v): %w (%w)", pub, err, ErrNoPermission, config.ErrInvalidConfig)
		default:
			denied = append(denied, fmt.Sprintf("%v: %v", need[i][:2], err))
		}
	}
	if len(denied) > 0 {
		return fmt.Errorf("redis: the replay log needs permissions the Redis user lacks: %s; grant EVALSHA, EVAL, INFO, XADD, XTRIM, XRANGE, XINFO, EXISTS, TYPE, DEL, GET, MGET, SET, HGET, HSET, HDEL, RPUSH, LPOP and LINDEX on the keys %q, or set DisableReplay: %w",
			strings.Join(denied, "; "), d.logKeys, ErrReplayPermission)
	}
	return nil
}

// ErrReplayPermission is wrapped by New's error (and so NewCache's) when
// Redis answers but the user may not run what the replay log needs; the
// message names the refused command. Grant it, or set DisableReplay.
var ErrReplayPermission = errors.New("redis: permission denied for the replay log")
