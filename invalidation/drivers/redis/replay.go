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

	"github.com/halilbulentorhon/invacache-go/internal/wire"
	"github.com/halilbulentorhon/invacache-go/invalidation"
)

// logMaxEntries caps the replay log's entries whatever ReplayWindow says, so
// a write storm cannot grow it without bound (trimmed approximately, by
// whole stream nodes: it may hold slightly more).
const logMaxEntries = 1_000_000

// replayChunk is how many entries Replay reads per round trip: a backlog is
// never held in memory whole.
const replayChunk = 512

// replayTimeout bounds each round trip of LogHead and Replay: they run on
// the subscription's delivery goroutine.
const replayTimeout = 10 * time.Second

// logKeys returns the keys of the replay log of channel: the stream and the
// epoch, both in the cluster hash slot of the channel, so that the publish
// script (which also PUBLISHes or SPUBLISHes to the channel) runs on the
// node that owns the channel's slot. A channel with a hash tag keeps it; a
// channel without one is wrapped in braces; a channel whose braces make
// wrapping impossible ("a}b") gets a numbered suffix chosen so that the
// key's slot equals the channel's.
func logKeys(channel string) (stream, epoch string) {
	return logKey(channel, "log"), logKey(channel, "epoch")
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

// luaInit makes sure the log exists with an epoch, in ep: a missing epoch
// key or a missing stream (a Redis restarted without persistence, a key
// evicted or deleted) starts a new log, empty, under the candidate epoch
// the client passed in ARGV[1]. The new stream starts with a marker entry
// (field "i", no payload; Replay skips it), so the log is never empty:
// trimming keeps the newest entry (MINID is a window below it), so the
// entry a cursor names is in the log until trimming passes it. That is how
// Replay sees trimming past a cursor (XINFO's max-deleted-entry-id counts
// XDEL only, not trimming).
const luaInit = `
local ep = redis.call('GET', KEYS[2])
if not ep or redis.call('EXISTS', KEYS[1]) == 0 then
  ep = ARGV[1]
  redis.call('DEL', KEYS[1])
  redis.call('XADD', KEYS[1], '*', 'i', '')
  redis.call('SET', KEYS[2], ep)
end
`

// publishScript logs and publishes a batch (group commit: one round trip).
// KEYS: stream, epoch. ARGV: candidate epoch, window ms, max entries,
// channel, "s" for SPUBLISH else PUBLISH, then the payloads. Each payload is
// appended to the stream, then published in a frame carrying the epoch and
// the id Redis assigned: a payload is in the log iff it was published.
// Trimming: MAXLEN per entry, and MINID once per batch at the last id's
// milliseconds minus the window, on ids Redis assigned (no host's clock).
var publishScript = goredis.NewScript(luaInit + `
local pub = 'PUBLISH'
if ARGV[5] == 's' then pub = 'SPUBLISH' end
local id
for i = 6, #ARGV do
  id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'p', ARGV[i])
  redis.call(pub, ARGV[4], '\0ivl1 ' .. ep .. ' ' .. id .. ' ' .. ARGV[i])
end
if id then
  local min = tonumber(string.match(id, '^(%d+)')) - tonumber(ARGV[2])
  if min > 0 then
    redis.call('XTRIM', KEYS[1], 'MINID', '~', string.format('%.0f', min))
  end
end
return ep
`)

// headScript ensures the log exists and returns {epoch, last-generated-id}.
// KEYS: stream, epoch. ARGV: candidate epoch, max entries. The XTRIM is a
// no-op that makes the construction probe check that permission too.
var headScript = goredis.NewScript(luaInit + `
redis.call('XTRIM', KEYS[1], 'MAXLEN', '~', ARGV[2])
local info = redis.call('XINFO', 'STREAM', KEYS[1])
for i = 1, #info, 2 do
  if info[i] == 'last-generated-id' then return {ep, info[i + 1]} end
end
return redis.error_reply('no last-generated-id in XINFO STREAM (Redis 7 or later is needed)')
`)

func newEpoch() string { return fmt.Sprintf("%016x", rand.Uint64()) }

// maxCallBytes bounds the payload bytes of one script call: a batch larger
// than that is split into several calls sent in one pipeline, so that Redis
// runs the first call while it still reads the next ones and the
// subscribers receive the first messages early (one call holding the whole
// batch serializes reading, running and delivering it).
const maxCallBytes = 128 << 10

// sendLogged publishes payloads through the publish script, in one round
// trip: one script call, or a pipeline of calls of at most maxCallBytes
// each (in order, on the node that owns the channel's slot).
func (d *Driver) sendLogged(ctx context.Context, payloads [][]byte) error {
	keys := []string{d.streamKey, d.epochKey}
	var calls [][]any
	for start := 0; start < len(payloads); {
		end, size := start, 0
		for end < len(payloads) && (end == start || size+len(payloads[end]) <= maxCallBytes) {
			size += len(payloads[end])
			end++
		}
		calls = append(calls, d.scriptArgs(payloads[start:end]))
		start = end
	}
	if len(calls) == 1 {
		if err := publishScript.Run(ctx, d.hub.pub, keys, calls[0]...).Err(); err != nil {
			return fmt.Errorf("redis: publish (replay log script): %w", err)
		}
		return nil
	}
	cmds, err := d.hub.pub.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, args := range calls {
			publishScript.EvalSha(ctx, p, keys, args...)
		}
		return nil
	})
	if err != nil && isNoScript(err) {
		// Redis lost its script cache (a restart, SCRIPT FLUSH): the calls
		// that failed ran nothing; send them again, loading the script.
		for i, cmd := range cmds {
			if isNoScript(cmd.Err()) {
				if err = publishScript.Run(ctx, d.hub.pub, keys, calls[i]...).Err(); err != nil {
					break
				}
			} else if cmd.Err() != nil {
				err = cmd.Err()
				break
			}
		}
	}
	if err != nil {
		return fmt.Errorf("redis: publish (replay log script): %w", err)
	}
	return nil
}

func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}

// scriptArgs is ARGV of the publish script for payloads.
func (d *Driver) scriptArgs(payloads [][]byte) []any {
	mode := "p"
	if d.sharded {
		mode = "s"
	}
	args := make([]any, 0, 5+len(payloads))
	args = append(args, newEpoch(), d.window.Milliseconds(), logMaxEntries, d.channel, mode)
	for _, p := range payloads {
		args = append(args, p)
	}
	return args
}

var _ invalidation.Replayer = (*Driver)(nil)

// LogHead returns the replay log's epoch and last id, creating the log (with
// a new epoch) when it does not exist. It reads on the publish client, never
// on the subscription connection. With DisableReplay it returns an error
// wrapping invalidation.ErrReplayDisabled.
func (d *Driver) LogHead(ctx context.Context) (invalidation.LogPos, error) {
	if d.noReplay {
		return invalidation.LogPos{}, fmt.Errorf("redis: LogHead: %w", invalidation.ErrReplayDisabled)
	}
	ctx, cancel := context.WithTimeout(ctx, replayTimeout)
	defer cancel()
	return d.head(ctx, d.hub.pub)
}

func (d *Driver) head(ctx context.Context, c goredis.Scripter) (invalidation.LogPos, error) {
	v, err := headScript.Run(ctx, c, []string{d.streamKey, d.epochKey}, newEpoch(), logMaxEntries).StringSlice()
	if err != nil {
		return invalidation.LogPos{}, fmt.Errorf("redis: read the replay log's head: %w", err)
	}
	if len(v) != 2 {
		return invalidation.LogPos{}, fmt.Errorf("redis: read the replay log's head: %d values, want 2", len(v))
	}
	id, ok := wire.ParseLogID(v[1])
	if !ok {
		return invalidation.LogPos{}, fmt.Errorf("redis: read the replay log's head: bad id %q", v[1])
	}
	d.noteAdded(v[0], 0)
	return invalidation.LogPos{Epoch: v[0], ID: id}, nil
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

// luaIDs compares stream ids as Redis does, on their decimal strings (Lua
// numbers are doubles: an id past 2^53 would round).
const luaIDs = `
local function cmpnum(a, b)
  if #a ~= #b then return #a < #b and -1 or 1 end
  if a == b then return 0 end
  return a < b and -1 or 1
end
local function cmpid(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  local c = cmpnum(am, bm)
  if c ~= 0 then return c end
  return cmpnum(as, bs)
end
`

// chunkScript reads one chunk of a catch-up and proves, in the same atomic
// step, that it starts at the cursor: the epoch key holds the cursor's
// epoch, no entry after the cursor was XDELed (max-deleted-entry-id), and
// the cursor's own entry is the first one XRANGE returns from it. Trimming
// cuts the log's front (and does not move max-deleted-entry-id), so the
// cursor entry's presence is what proves that nothing after it was trimmed;
// each chunk checks it again, so a trim between two chunks is seen. A zero
// cursor (a log that was empty) needs a log that never lost an entry.
// KEYS: stream, epoch. ARGV: the cursor's epoch, the cursor's id, the head
// ('' on the first chunk: the log's last-generated-id, returned), count.
// Reply: {'gap', why} or {'ok', head, entries-added, entries after the cursor}.
var chunkScript = goredis.NewScript(luaIDs + `
local ep = redis.call('GET', KEYS[2])
if not ep then return {'gap', 'the epoch key ' .. KEYS[2] .. ' does not exist (the log was lost)'} end
if ep ~= ARGV[1] then return {'gap', 'the epoch is "' .. ep .. '", the cursor\'s "' .. ARGV[1] .. '" (the log was recreated)'} end
if redis.call('EXISTS', KEYS[1]) == 0 then return {'gap', 'the stream ' .. KEYS[1] .. ' does not exist'} end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local st = {}
for i = 1, #info, 2 do st[info[i]] = info[i + 1] end
local maxdel, last, added = st['max-deleted-entry-id'], st['last-generated-id'], st['entries-added']
if not maxdel or not added then return {'gap', 'XINFO STREAM has no max-deleted-entry-id (Redis 7 or later is needed)'} end
if cmpid(maxdel, ARGV[2]) > 0 then
  return {'gap', 'entries after the cursor ' .. ARGV[2] .. ' were deleted (max-deleted-entry-id ' .. maxdel .. ')'}
end
local head = ARGV[3]
if head == '' then head = last end
local n = tonumber(ARGV[4])
local out = {}
if ARGV[2] == '0-0' then
  if added ~= st['length'] or maxdel ~= '0-0' then
    return {'gap', 'the log lost entries (' .. added .. ' added, ' .. st['length'] .. ' held) and the cursor is at its start'}
  end
  out = redis.call('XRANGE', KEYS[1], '-', head, 'COUNT', n)
else
  local r = redis.call('XRANGE', KEYS[1], ARGV[2], head, 'COUNT', n + 1)
  if #r == 0 or r[1][1] ~= ARGV[2] then
    return {'gap', 'the cursor\'s entry ' .. ARGV[2] .. ' is not in the log (trimmed: away longer than ReplayWindow; deleted; or a failover lost the log\'s tail)'}
  end
  for i = 2, #r do out[i - 1] = r[i] end
end
return {'ok', head, added, out}
`)

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
	v, err := chunkScript.Run(ctx, d.hub.pub, []string{d.streamKey, d.epochKey}, epoch, cur.String(), head, replayChunk).Slice()
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
// chunk also checks that the stream's entries-added did not go backwards
// since this driver last looked. Where the proof fails, Replay returns an
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
// error reply, not a timeout (a stuck link already took its full timeout:
// retrying it would hold the subscription that long again), and ctx still
// live.
func isTransient(ctx context.Context, err error) bool {
	var ne net.Error
	return ctx.Err() == nil && !errors.Is(err, invalidation.ErrNoContinuity) && !isReplyError(err) &&
		!errors.Is(err, context.DeadlineExceeded) && !(errors.As(err, &ne) && ne.Timeout())
}

// probeReplay checks, when Redis answers, that the user may run what the
// replay log needs (scripts, the stream and epoch keys, XINFO, XRANGE), so
// that a forbidden command fails NewCache with advice instead of every
// publish. An unreachable Redis is not an error: the driver connects later.
func (d *Driver) probeReplay() error {
	ctx, cancel := context.WithTimeout(context.Background(), d.dialTimeout)
	defer cancel()
	c := d.hub.pub
	_, err := d.head(ctx, c)
	if err != nil && !isReplyError(err) {
		return nil // not reachable now (or closing): nothing to learn
	}
	errs := []error{err}
	cmds, _ := c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		p.XInfoStream(ctx, d.streamKey)
		p.XRangeN(ctx, d.streamKey, "-", "+", 1)
		p.Get(ctx, d.epochKey)
		return nil
	})
	for _, cmd := range cmds {
		errs = append(errs, cmd.Err())
	}
	for _, err := range errs {
		if err != nil && strings.Contains(err.Error(), "NOPERM") {
			return fmt.Errorf("redis: the replay log needs permissions the Redis user lacks (%v); grant EVALSHA, EVAL, XADD, XTRIM, XINFO, XRANGE, GET, SET, DEL and EXISTS on the keys %q and %q, or set DisableReplay: %w",
				err, d.streamKey, d.epochKey, ErrReplayPermission)
		}
	}
	return nil
}

// ErrReplayPermission is wrapped by New's error (and so NewCache's) when
// Redis answers but the user may not run what the replay log needs; the
// message names the refused command. Grant it, or set DisableReplay.
var ErrReplayPermission = errors.New("redis: permission denied for the replay log")
