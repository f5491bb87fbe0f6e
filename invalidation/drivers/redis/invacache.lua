#!lua name=invacache
-- Generated from invalidation/drivers/redis/logscripts.go (operatorLibrary): do not edit.
local function publish(KEYS, ARGV)

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
  local a = {tok, '0', '1000000', ch, mode, '134217728'}
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
