package redis

import (
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// The replay log's keys, all in the cluster hash slot of the channel (see
// logKeys): KEYS[1] the stream; KEYS[2] the epoch; KEYS[3] the meta hash
// (run, the run_id of the server the log's history was proven on; brk, the
// barrier: see luaRunCheck); KEYS[4] the byte checkpoints (a list of "id
// total", one pushed each time the total crosses a sixteenth of
// MaxLogBytes); KEYS[5] the unlogged mark; KEYS[6] the byte count ("total
// cut lt": the bytes appended in this epoch, payloads plus 64 per entry;
// the total past which the oldest checkpoint falls more than MaxLogBytes
// behind; the milliseconds of the last window trim, done at most once a
// second). Trimming to the first checkpoint within the cap keeps the log
// under it; the normal publish reads the epoch, the mark and the byte
// count with one MGET and writes the count with one SET.
//
// The unlogged mark: every publish that bypasses the log (DisableReplay, a
// log write Redis refused) sets it to a new random token, in the same
// atomic step as its PUBLISH; every logged entry carries the mark current
// when it was appended (field u, absent while there is none). A catch-up
// from a cursor checks that the mark is still the one its cursor's entry
// carries: else a message that is not in the log was published after the
// cursor, and the replica may have missed it.

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

// A log starts with a marker entry (field i, no payload; Replay skips it),
// so it is never empty: trimming keeps the newest entry, and the entry a
// cursor names stays in the log until trimming passes it. A barrier (see
// luaRunCheck) appends one too.
//
// luaLib holds the functions the log's scripts share. They read KEYS and
// ARGV as the calling script's (the operator function binds them as
// locals: see operatorLibrary).
const luaLib = `
local function runid()
  return string.match(redis.call('INFO', 'server'), 'run_id:(%x+)') or ''
end
local function mark()
  local u = redis.pcall('GET', KEYS[5])
  if type(u) == 'table' then
    redis.call('DEL', KEYS[5])
    return false
  end
  return u
end
local function marker()
  local u = mark()
  if u then
    redis.call('XADD', KEYS[1], '*', 'i', '', 'u', u)
  else
    redis.call('XADD', KEYS[1], '*', 'i', '')
  end
  return u
end
local function newlog(ep)
  redis.call('DEL', KEYS[1], KEYS[4], KEYS[6])
  if redis.call('TYPE', KEYS[3])['ok'] == 'hash' then
    redis.call('HDEL', KEYS[3], 'brk')
  else
    redis.call('DEL', KEYS[3])
  end
  redis.call('SET', KEYS[2], ep)
  local u = marker()
  redis.call('HSET', KEYS[3], 'run', runid())
  return u
end
local function openlog(stream, v)
  v = v or redis.call('MGET', KEYS[2], KEYS[5], KEYS[6])
  local t = 'stream'
  if stream then t = redis.call('TYPE', KEYS[1])['ok'] end
  if v[1] and t == 'stream' then
    local total, cut, lt = string.match(v[3] or '', '^(%d+) (%d+) (%d+)$')
    return v[1], v[2], tonumber(total) or 0, tonumber(cut) or 0, tonumber(lt) or 0, '', false
  end
  local why = ''
  if (t ~= 'stream' and t ~= 'none') or (not v[1] and redis.call('EXISTS', KEYS[2]) == 1) then
    why = 'a key of the log had the wrong type'
  end
  return ARGV[1], newlog(ARGV[1]), 0, 0, 0, why, true
end
local function trim(id, total, cut, lt)
  local window = tonumber(ARGV[2])
  if window > 0 then
    local ms = string.match(id, '^(%d+)')
    local now = #ms < 16 and tonumber(ms)
    if now and now - lt >= 1000 then
      local min = now - window
      if min > 0 then redis.pcall('XTRIM', KEYS[1], 'MINID', '~', string.format('%.0f', min)) end
      lt = now
    end
  end
  if total > cut then
    -- Past the cut: drop the checkpoints more than the cap behind, trim
    -- to the first one kept, and cut again when that one falls behind.
    local maxb, popped, to = tonumber(ARGV[6]), false, id
    cut = total + maxb
    while true do
      local c = redis.pcall('LINDEX', KEYS[4], 0)
      if type(c) ~= 'string' then break end
      local cid, cum = string.match(c, '^(%S+) (%d+)$')
      if cum and total - tonumber(cum) <= maxb then
        to, cut = cid, tonumber(cum) + maxb
        break
      end
      redis.call('LPOP', KEYS[4])
      popped = true
    end
    if popped then redis.pcall('XTRIM', KEYS[1], 'MINID', '~', to) end
  end
  redis.pcall('SET', KEYS[6], string.format('%.0f %.0f %.0f', total, cut, lt))
end
`

// luaPublish logs and publishes a batch (group commit: one round trip).
// KEYS: the log's keys. ARGV: candidate epoch, window ms (0: no window
// trim), max entries, channel, "s" for SPUBLISH else PUBLISH, max bytes,
// then the payloads. Each payload is appended to the stream, then
// published in a frame carrying the epoch and the id Redis assigned: a
// payload is in the log iff it was published in a frame. A log that cannot
// be used (a key of the wrong type, ids exhausted) is replaced under the
// candidate epoch. An XADD that Redis refuses (OOM, NOPERM) stops the
// batch: the reply says how many payloads went out, and the caller
// publishes the rest outside the log, with the mark. Trimming (the window
// on the ids Redis assigned, no host's clock, at most once a second; the
// byte cap through the checkpoints, O(1) amortized; MAXLEN per entry)
// never fails the publish.
// Reply: the epoch; or {epoch, payloads sent, XADD error, why the log was
// replaced} when something went wrong.
//
// Cost: the normal path is one MGET, per payload XADD and PUBLISH, one SET,
// in straight-line code (openlog only when the epoch is missing). The order
// inside the script does not change when subscribers get the frame: Redis
// writes their output after the script returns. At group-commit sizes the
// cost is the payload bytes: Redis's Lua hashes every byte of every string
// it creates, and each payload becomes two (its ARGV and its frame) where
// the unlogged script makes one.
const luaPublish = `
local v = redis.call('MGET', KEYS[2], KEYS[5], KEYS[6])
local ep, u, total, cut, lt, why, fresh = v[1], v[2], 0, 0, 0, '', false
if ep and v[3] then
  local a, b, c = string.match(v[3], '^(%d+) (%d+) (%d+)$')
  if a then total, cut, lt = tonumber(a), tonumber(b), tonumber(c) end
elseif not ep then
  ep, u, total, cut, lt, why, fresh = openlog(false, v)
end
local pub = ARGV[5] == 's' and 'SPUBLISH' or 'PUBLISH'
-- A checkpoint each time the total crosses a multiple of st.
local st = math.max(math.floor(tonumber(ARGV[6]) / 16), 1)
local ck = (math.floor(total / st) + 1) * st
local id, n, err = nil, 0, ''
local i, last = 7, #ARGV
while i <= last do
  local r
  if u then
    r = redis.pcall('XADD', KEYS[1], 'NOMKSTREAM', 'MAXLEN', '~', ARGV[3], '*', 'p', ARGV[i], 'u', u)
  else
    r = redis.pcall('XADD', KEYS[1], 'NOMKSTREAM', 'MAXLEN', '~', ARGV[3], '*', 'p', ARGV[i])
  end
  -- A missing stream (deleted, evicted), a key of the wrong type or
  -- exhausted ids: the log starts again under the candidate epoch (once).
  local again
  if not r then
    again = ''
  elseif type(r) == 'table' then
    if string.find(r.err, 'exhausted', 1, true) then
      again = 'the log\'s ids were exhausted'
    elseif string.find(r.err, 'WRONGTYPE', 1, true) then
      again = 'a key of the log had the wrong type'
    end
    if not again or fresh then
      err = r.err
      break
    end
  end
  if again then
    if fresh then
      err = 'the new log refused the entry'
      break
    end
    if again ~= '' then why = again end
    ep, total, cut, lt, fresh, ck = ARGV[1], 0, 0, 0, true, st
    u = newlog(ep)
  else
    id = r
    redis.call(pub, ARGV[4], '\0ivl1 ' .. ep .. ' ' .. id .. ' ' .. ARGV[i])
    n = n + 1
    total = total + #ARGV[i] + 64
    if total >= ck then
      redis.pcall('RPUSH', KEYS[4], id .. ' ' .. string.format('%.0f', total))
      ck = (math.floor(total / st) + 1) * st
    end
    i = i + 1
  end
end
if id then trim(id, total, cut, lt) end
if err ~= '' or why ~= '' then return {ep, n, err, why} end
return ep
`

var publishScript = goredis.NewScript(luaLib + luaPublish)

// luaRunCheck proves the log's history across a restart of its server.
// It runs on the channel's master only (a script sent to a demoted master
// by a stale cluster map would read a replica's copy of the log as its
// own: READONLY, retried after the map is reloaded). The meta hash records
// the run_id of the server the log was last proven on; another run_id means
// a restart or a failover, after which the log may have lost its tail (an
// RDB snapshot, an AOF not fsynced at every write, asynchronous
// replication). Only a restart of a server whose AOF is fsynced at every
// write keeps the history (the caller asked CONFIG GET: ARGV[trust] is
// "always"; "?" makes the script ask first), and only if the server was not
// promoted since it started (a promoted replica has a second replication
// id: second_repl_offset is not -1). Otherwise the script sets a barrier at
// the log's last id (meta.brk: no cursor up to it can catch up; the log
// keeps its epoch, so nodes that stayed linked keep going) and appends a
// marker entry after it, a cursor past the barrier for LogHead. Either way
// the new run_id is recorded. Sets ok to false when it set a barrier.
const luaRunCheck = `
local ok = true
local repl = redis.call('INFO', 'replication')
if not string.find(repl, 'role:master', 1, true) then
  return redis.error_reply('READONLY the replay log was read on a replica (a stale cluster map?)')
end
local run, cur = redis.call('HGET', KEYS[3], 'run'), runid()
if run ~= cur then
  local aof = string.find(redis.call('INFO', 'persistence'), 'aof_enabled:1', 1, true) and
    string.find(repl, 'second_repl_offset:-1', 1, true)
  if aof and ARGV[TRUST] == '?' then return {'ask'} end
  if not (aof and run and ARGV[TRUST] == 'always') then
    ok = false
    local info = redis.call('XINFO', 'STREAM', KEYS[1])
    for i = 1, #info, 2 do
      if info[i] == 'last-generated-id' then redis.call('HSET', KEYS[3], 'brk', info[i + 1]) end
    end
    marker()
  end
  redis.call('HSET', KEYS[3], 'run', cur)
end
`

func runCheck(trustArg string) string { return strings.ReplaceAll(luaRunCheck, "TRUST", trustArg) }

// headScript returns {epoch, last-generated-id, why the log was replaced or
// cut}. KEYS: the log's keys. ARGV: candidate epoch, trust. It creates the
// log when missing, replaces it under the candidate epoch when it is
// unusable, and sets a barrier when its history is not proven
// (luaRunCheck).
var headScript = goredis.NewScript(luaLib + `
local ep, u, total, cut, lt, why = openlog(true)
` + runCheck("2") + `
if not ok then
  why = 'the server restarted or failed over (run_id changed) without AOF appendfsync always: the log may have lost its tail, so no cursor before now can catch up'
end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
for i = 1, #info, 2 do
  if info[i] == 'last-generated-id' then return {ep, info[i + 1], why} end
end
return redis.error_reply('no last-generated-id in XINFO STREAM (Redis 7 or later is needed)')
`)

// chunkScript reads one chunk of a catch-up and proves, in the same atomic
// step, that it starts at the cursor: the epoch key holds the cursor's
// epoch, no entry after the cursor was XDELed (max-deleted-entry-id), and
// the cursor's own entry is the first one XRANGE returns from it. Trimming
// cuts the log's front (and does not move max-deleted-entry-id), so the
// cursor entry's presence is what proves that nothing after it was trimmed;
// each chunk checks it again, so a trim between two chunks is seen. A zero
// cursor (a log that was empty) needs a log that never lost an entry. The
// first chunk also proves the log's history (luaRunCheck) and that no
// message was published outside the log since the cursor's entry (the
// unlogged mark).
// KEYS: the log's keys. ARGV: the cursor's epoch, the cursor's id, the head
// (” on the first chunk: the log's last-generated-id, returned), count,
// trust. Reply: {'gap', why}, {'ask'} or {'ok', head, entries-added,
// entries after the cursor}.
var chunkScript = goredis.NewScript(luaLib + luaIDs + `
local ep = redis.call('GET', KEYS[2])
if not ep then return {'gap', 'the epoch key ' .. KEYS[2] .. ' does not exist (the log was lost)'} end
if ep ~= ARGV[1] then return {'gap', 'the epoch is "' .. ep .. '", the cursor\'s "' .. ARGV[1] .. '" (the log was recreated)'} end
if redis.call('EXISTS', KEYS[1]) == 0 then return {'gap', 'the stream ' .. KEYS[1] .. ' does not exist'} end
local first = ARGV[3] == ''
if first then
` + runCheck("5") + `
  if not ok then
    return {'gap', 'the server restarted or failed over (run_id changed) without AOF appendfsync always: the log may have lost its tail'}
  end
  local brk = redis.call('HGET', KEYS[3], 'brk')
  if brk and cmpid(ARGV[2], brk) <= 0 then
    return {'gap', 'the server restarted or failed over after the cursor (a barrier at ' .. brk .. '): the log may have lost its tail'}
  end
end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local st = {}
for i = 1, #info, 2 do st[info[i]] = info[i + 1] end
local maxdel, last, added = st['max-deleted-entry-id'], st['last-generated-id'], st['entries-added']
if not maxdel or not added then return {'gap', 'XINFO STREAM has no max-deleted-entry-id (Redis 7 or later is needed)'} end
if cmpid(maxdel, ARGV[2]) > 0 then
  return {'gap', 'entries after the cursor ' .. ARGV[2] .. ' were deleted (max-deleted-entry-id ' .. maxdel .. ')'}
end
local head = ARGV[3]
if first then head = last end
local n = tonumber(ARGV[4])
local mark = redis.pcall('GET', KEYS[5])
if type(mark) == 'table' then mark = '?' end
mark = mark or ''
local out = {}
if ARGV[2] == '0-0' then
  if added ~= st['length'] or maxdel ~= '0-0' then
    return {'gap', 'the log lost entries (' .. added .. ' added, ' .. st['length'] .. ' held) and the cursor is at its start'}
  end
  if first and mark ~= '' then
    return {'gap', 'an invalidation was published outside the log (unlogged mark ' .. mark .. ') and the cursor is at the log\'s start'}
  end
  out = redis.call('XRANGE', KEYS[1], '-', head, 'COUNT', n)
else
  local r = redis.call('XRANGE', KEYS[1], ARGV[2], head, 'COUNT', n + 1)
  if #r == 0 or r[1][1] ~= ARGV[2] then
    return {'gap', 'the cursor\'s entry ' .. ARGV[2] .. ' is not in the log (trimmed: away longer than ReplayWindow or past the byte cap; deleted; or a failover lost the log\'s tail)'}
  end
  if first then
    local f, cu = r[1][2], ''
    for i = 1, #f, 2 do if f[i] == 'u' then cu = f[i + 1] end end
    if cu ~= mark then
      return {'gap', 'an invalidation was published outside the log after the cursor (unlogged mark ' .. mark .. ', the cursor\'s "' .. cu .. '": a writer with DisableReplay, or a log write Redis refused)'}
    end
  end
  for i = 2, #r do out[i - 1] = r[i] end
end
return {'ok', head, added, out}
`)

// unloggedScript publishes payloads outside the log and sets the unlogged
// mark, atomically. It may run when Redis is out of memory (allow-oom), so
// that a log write refused for OOM still leaves its mark. KEYS: the mark.
// ARGV: a new mark, channel, "s" for SPUBLISH else PUBLISH, then the
// payloads. Reply: "" or the error that kept the mark from being set.
var unloggedScript = goredis.NewScript(`#!lua flags=allow-oom
local ok = redis.pcall('SET', KEYS[1], ARGV[1])
local pub = 'PUBLISH'
if ARGV[3] == 's' then pub = 'SPUBLISH' end
for i = 4, #ARGV do redis.call(pub, ARGV[2], ARGV[i]) end
if ok.err then return ok.err end
return ''
`)

// operatorLibrary is the Redis Functions library an operator loads to
// invalidate through the log from redis-cli (the file invacache.lua next to
// this package; see the README):
//
//	redis-cli -x FUNCTION LOAD REPLACE < invacache.lua
//	redis-cli FCALL invacache_invalidate 1 invacache:invalidation user:1 user:2
//
// invacache_invalidate (invacache_sinvalidate for SPUBLISH) takes the
// channel as its one key and keys to invalidate as arguments (an empty one
// clears every cache, as a raw empty payload does); it logs and publishes
// each key as a raw payload exactly as the publish script does (no window
// trim: the writers' ReplayWindow governs; the entry and byte caps at their
// defaults). A key the log refuses is published outside it with the
// unlogged mark. It returns the number of keys published. A channel with a
// '}' but no hash tag ("a}b") is refused: use `invacache invalidate`.
func operatorLibrary() string {
	return `#!lua name=invacache
-- Generated from invalidation/drivers/redis/logscripts.go (operatorLibrary): do not edit.
local function publish(KEYS, ARGV)
` + luaLib + luaPublish + `
end
local function logkeys(ch)
  local p
  local i = string.find(ch, '{', 1, true)
  local j = i and string.find(ch, '}', i + 1, true)
  if j and j > i + 1 then
    p = ch .. ':'
  elseif not string.find(ch, '}', 1, true) then
    p = '{' .. ch .. '}:'
  else
    return nil
  end
  return {p .. 'log', p .. 'epoch', p .. 'meta', p .. 'ckpt', p .. 'unlogged', p .. 'bytes'}
end
local function call(mode, keys, args)
  local ch = keys[1]
  local k = logkeys(ch or '')
  if not k then return redis.error_reply('invacache: channel ' .. tostring(ch) .. ' has a } without a hash tag: use invacache invalidate') end
  local t = redis.call('TIME')
  local tok = string.format('%08x%08x', tonumber(t[1]), tonumber(t[2]))
  local a = {tok, '0', '` + strconv.Itoa(logMaxEntries) + `', ch, mode, '` + strconv.Itoa(DefaultMaxLogBytes) + `'}
  for i = 1, #args do a[#a + 1] = args[i] end
  local r = publish(k, a)
  if type(r) == 'table' and r[3] ~= '' then
    redis.pcall('SET', k[5], tok)
    local pub = 'PUBLISH'
    if mode == 's' then pub = 'SPUBLISH' end
    for i = r[2] + 1, #args do redis.call(pub, ch, args[i]) end
  end
  return #args
end
redis.register_function('invacache_invalidate', function(keys, args) return call('p', keys, args) end)
redis.register_function('invacache_sinvalidate', function(keys, args) return call('s', keys, args) end)
`
}
