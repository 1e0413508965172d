/**
 * Lua scripts of the Redis transport. Each one is a single atomic step on the
 * kombu layout (see the top of `redis.ts`). Conventions shared by every script:
 *
 * - KEYS[1] = `unacked` (hash), KEYS[2] = `unacked_index` (zset), always.
 * - Queue lists and `_kombu.binding.*` sets are computed inside the scripts (kombu's
 *   layout is not cluster-friendly anyway), so these need a single Redis node.
 * - Time comes from Redis `TIME`, so workers with skewed clocks agree.
 * - Envelopes are never re-encoded: flags are edited in place so a kombu-written
 *   envelope stays byte-identical to what kombu itself would write back.
 */

/** JSON scanning on strings, envelope field extraction, kombu's unacked entry. */
const ENVELOPE_LUA = `
local SEP = '\\6\\22'
local function now_parts()
  local t = redis.call('TIME')
  return tonumber(t[1]), tonumber(t[2])
end
local function now_ms()
  local s, us = now_parts()
  return s * 1000 + math.floor(us / 1000)
end
local function now_seconds_text()
  local s, us = now_parts()
  return s .. '.' .. string.format('%06d', us)
end
local function skip_ws(s, i)
  return string.find(s, '[^ \\t\\r\\n]', i) or (#s + 1)
end
-- index of the last character of the JSON value starting at i; nil when malformed
local function value_end(s, i)
  local c = string.sub(s, i, i)
  if c == '"' then
    local j = i + 1
    while true do
      local k = string.find(s, '["\\\\]', j)
      if not k then return nil end
      if string.byte(s, k) == 92 then j = k + 2 else return k end
    end
  elseif c == '{' or c == '[' then
    local depth, j = 0, i
    while true do
      local k = string.find(s, '[%[%]{}"]', j)
      if not k then return nil end
      local ch = string.sub(s, k, k)
      if ch == '"' then
        k = value_end(s, k)
        if not k then return nil end
      elseif ch == '{' or ch == '[' then
        depth = depth + 1
      else
        depth = depth - 1
        if depth == 0 then return k end
      end
      j = k + 1
    end
  elseif c == '' then
    return nil
  end
  local k = string.find(s, '[,}%]%s]', i)
  if not k then return #s end
  return k - 1
end
-- member "name" of the object starting at i: (value start, value end),
-- or (nil, index of the closing brace) when absent, or (nil, nil) when malformed
local function member(s, i, name)
  local j = skip_ws(s, i + 1)
  if string.sub(s, j, j) == '}' then return nil, j end
  while true do
    if string.sub(s, j, j) ~= '"' then return nil, nil end
    local kend = value_end(s, j)
    if not kend then return nil, nil end
    local colon = skip_ws(s, kend + 1)
    if string.sub(s, colon, colon) ~= ':' then return nil, nil end
    local v = skip_ws(s, colon + 1)
    local vend = value_end(s, v)
    if not vend then return nil, nil end
    if string.sub(s, j + 1, kend - 1) == name then return v, vend end
    local n = skip_ws(s, vend + 1)
    local ch = string.sub(s, n, n)
    if ch == '}' then return nil, n end
    if ch ~= ',' then return nil, nil end
    j = skip_ws(s, n + 1)
  end
end
local function object_at(s, i, name)
  local v = member(s, i, name)
  if v and string.sub(s, v, v) == '{' then return v end
  return nil
end
-- s with member "name" of the object at i set to true (appended when absent, like Python dicts)
local function set_true(s, i, name)
  local v, e = member(s, i, name)
  if v then return string.sub(s, 1, v - 1) .. 'true' .. string.sub(s, e + 1) end
  if not e then return s end
  local sep = ', '
  if skip_ws(s, i + 1) == e then sep = '' end
  return string.sub(s, 1, e - 1) .. sep .. '"' .. name .. '": true' .. string.sub(s, e)
end
-- kombu's restore marks: headers.redelivered and properties.delivery_info.redelivered
local function mark_redelivered(env)
  if string.sub(env, 1, 1) ~= '{' then return env end
  local h = object_at(env, 1, 'headers')
  if not h then return env end
  env = set_true(env, h, 'redelivered')
  local p = object_at(env, 1, 'properties')
  if not p then return env end
  local d = object_at(env, p, 'delivery_info')
  if not d then return env end
  return set_true(env, d, 'redelivered')
end
local DI = '"delivery_info": {"exchange": "'
local RK = '", "routing_key": "'
local DT = '"delivery_tag": "'
-- exchange, routing key, tag of an envelope in kombu's own formatting (nil otherwise)
local function quick_fields(p)
  local a = string.find(p, DI, 1, true)
  if not a then return nil end
  local s1 = a + #DI
  local e1 = string.find(p, '"', s1, true)
  if not e1 or string.sub(p, e1, e1 + #RK - 1) ~= RK then return nil end
  local s2 = e1 + #RK
  local e2 = string.find(p, '"', s2, true)
  if not e2 then return nil end
  local t = string.find(p, DT, e2, true)
  if not t then return nil end
  local s3 = t + #DT
  local e3 = string.find(p, '"', s3, true)
  if not e3 then return nil end
  local ex, rk, tag = string.sub(p, s1, e1 - 1), string.sub(p, s2, e2 - 1), string.sub(p, s3, e3 - 1)
  if string.find(ex .. rk .. tag, '\\\\', 1, true) then return nil end
  return ex, rk, tag
end
-- the same through a full JSON parse; 4th result false when p is not JSON at all
local function slow_fields(p)
  local ok, env = pcall(cjson.decode, p)
  if not ok or type(env) ~= 'table' then return nil, nil, nil, ok end
  local props, ex, rk, tag = env['properties'], nil, nil, nil
  if type(props) == 'table' then
    local info = props['delivery_info']
    if type(info) == 'table' then ex, rk = info['exchange'], info['routing_key'] end
    tag = props['delivery_tag']
  end
  if type(ex) ~= 'string' or type(rk) ~= 'string' then ex, rk = nil, nil end
  if type(tag) ~= 'string' then tag = nil end
  return ex, rk, tag, true
end
local function json_str(s)
  if string.find(s, '[%c"\\\\/\\128-\\255]') then return cjson.encode(s) end
  return '"' .. s .. '"'
end
-- kombu's unacked entry: [<envelope>, "<exchange>", "<routing_key>"]; a payload that
-- is not JSON is stored as a JSON string so the entry stays parseable
local function unacked_entry(p, ex, rk, is_json)
  if not is_json then p = cjson.encode(p) end
  return '[' .. p .. ', ' .. json_str(ex) .. ', ' .. json_str(rk) .. ']'
end
`;

/** Routing and restoring, on top of ENVELOPE_LUA. */
const RESTORE_LUA = `
-- queues bound to (exchange, routing key) like kombu's lookup for direct exchanges;
-- unroutable messages go to kombu's dead-letter list ae.undeliver (or fallback)
local function lookup(ex, rk, fallback)
  if ex == '' then
    if rk ~= '' then return { rk } end
    return { fallback or 'ae.undeliver' }
  end
  local out = {}
  for _, m in ipairs(redis.call('SMEMBERS', '_kombu.binding.' .. ex)) do
    local a = string.find(m, SEP, 1, true)
    if a and string.sub(m, 1, a - 1) == rk then
      local b = string.find(m, SEP, a + 2, true)
      if b then out[#out + 1] = string.sub(m, b + 2) end
    end
  end
  if #out == 0 then out[1] = fallback or 'ae.undeliver' end
  return out
end
-- list of queue q for priority p with the given ascending steps (bucket 0 = bare name)
local function bucket_key(q, p, steps)
  p = math.max(0, math.min(9, math.floor(tonumber(p) or 0)))
  local b = steps[1]
  for _, s in ipairs(steps) do if s <= p then b = s end end
  if b == 0 then return q end
  return q .. SEP .. b
end
local function envelope_priority(env)
  local p = object_at(env, 1, 'properties')
  if not p then return 0 end
  local v, e = member(env, p, 'priority')
  if not v then return 0 end
  return tonumber(string.sub(env, v, e)) or 0
end
-- (envelope text, exchange, routing key, wrapped) of an unacked entry; nil when malformed
local function split_entry(entry)
  if string.sub(entry, 1, 1) ~= '[' then return nil end
  local s = skip_ws(entry, 2)
  local e = value_end(entry, s)
  if not e then return nil end
  local c = string.find(entry, ',', e + 1, true)
  if not c then return nil end
  local ok, rest = pcall(cjson.decode, '[' .. string.sub(entry, c + 1))
  if not ok or type(rest) ~= 'table' or type(rest[1]) ~= 'string' or type(rest[2]) ~= 'string' then return nil end
  local env = string.sub(entry, s, e)
  local wrapped = string.sub(env, 1, 1) == '"'
  if wrapped then env = cjson.decode(env) end
  return env, rest[1], rest[2], wrapped
end
-- move unacked message "tag" back to its queue, marked redelivered:
-- RPUSH = consumed next (kombu restore), LPUSH = back of the line (kombu reject+requeue)
local function restore_tag(tag, leftmost, fallback)
  local entry = redis.call('HGET', KEYS[1], tag)
  redis.call('ZREM', KEYS[2], tag)
  if not entry then return 0 end
  local env, ex, rk, wrapped = split_entry(entry)
  if not env then return 0 end
  redis.call('HDEL', KEYS[1], tag)
  if not wrapped then env = mark_redelivered(env) end
  local cmd = 'RPUSH'
  if leftmost then cmd = 'LPUSH' end
  for _, q in ipairs(lookup(ex, rk, fallback)) do redis.call(cmd, q, env) end
  return 1
end
-- restore what consumer c held: owned tags recorded before "until_ms" (later records
-- belong to whoever got the message after it was restored) and its inflight list
local function release_consumer(c, until_ms)
  local n = 0
  local owned = '_celeriac.owned.' .. c
  for _, tag in ipairs(redis.call('SMEMBERS', owned)) do
    local score = tonumber(redis.call('ZSCORE', KEYS[2], tag))
    if not score or score * 1000 <= until_ms then n = n + restore_tag(tag, false, nil) end
  end
  redis.call('DEL', owned)
  local inflight = '_celeriac.inflight.' .. c
  while true do
    local p = redis.call('RPOP', inflight)
    if not p then break end
    local ex, rk = quick_fields(p)
    if not ex then ex, rk = slow_fields(p) end
    local targets = { 'ae.undeliver' }
    if ex then targets = lookup(ex, rk, nil) end
    for _, q in ipairs(targets) do redis.call('RPUSH', q, p) end
    n = n + 1
  end
  return n
end
`;

/**
 * reserve — take up to `max` messages and record them unacked, atomically.
 * KEYS[1] unacked, KEYS[2] unacked_index, KEYS[3] `_celeriac.owned.<consumer>`,
 * KEYS[4] `_celeriac.inflight.<consumer>`, KEYS[5..] ready lists, priority-major.
 * ARGV[1] max, ARGV[2] tag prefix for messages without a usable delivery tag,
 * ARGV[3] queue the inflight list was filled from, ARGV[4..] queue of KEYS[5..].
 * Returns a flat array: envelope, tag, source (0 = inflight, i = KEYS[4 + i]).
 */
export const RESERVE_MESSAGES_LUA = `${ENVELOPE_LUA}
local max = tonumber(ARGV[1])
local now = now_seconds_text()
local out, n = {}, 0
local function take(p, src, queue)
  local ex, rk, tag = quick_fields(p)
  local is_json = true
  if not ex then
    ex, rk, tag, is_json = slow_fields(p)
    if not ex then ex, rk = '', queue end
  end
  if not tag or redis.call('HEXISTS', KEYS[1], tag) == 1 then tag = ARGV[2] .. n end
  redis.call('ZADD', KEYS[2], now, tag)
  redis.call('HSET', KEYS[1], tag, unacked_entry(p, ex, rk, is_json))
  redis.call('SADD', KEYS[3], tag)
  n = n + 1
  out[#out + 1] = p
  out[#out + 1] = tag
  out[#out + 1] = src
end
while n < max do
  local p = redis.call('RPOP', KEYS[4])
  if not p then break end
  take(p, 0, ARGV[3])
end
for i = 5, #KEYS do
  if n >= max then break end
  local batch = redis.call('RPOP', KEYS[i], max - n)
  if batch then
    for _, p in ipairs(batch) do take(p, i - 4, ARGV[i - 1]) end
  end
end
return out
`;

/**
 * restoreTags — give messages back (reject with requeue, restoreUnacked).
 * KEYS[1] unacked, KEYS[2] unacked_index, KEYS[3] `_celeriac.owned.<consumer>`.
 * ARGV[1] "1" = LPUSH (back of the line) / "0" = RPUSH (consumed next);
 * ARGV[2..] pairs of tag, queue it came from (used when unroutable).
 * Returns how many were restored.
 */
export const RESTORE_TAGS_LUA = `${ENVELOPE_LUA}${RESTORE_LUA}
local n = 0
for i = 2, #ARGV, 2 do
  n = n + restore_tag(ARGV[i], ARGV[1] == '1', ARGV[i + 1])
  redis.call('SREM', KEYS[3], ARGV[i])
end
return n
`;

/**
 * deferMessage — move an unacked message to the broker-side ETA zset.
 * KEYS[1] unacked, KEYS[2] unacked_index, KEYS[3] `_celeriac.owned.<consumer>`,
 * KEYS[4] `_celeriac.eta`. ARGV[1] tag, ARGV[2] eta (unix ms).
 * Returns 1 when moved, 0 when the tag was no longer unacked.
 */
export const DEFER_MESSAGE_LUA = `
local entry = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1])
if not entry then return 0 end
redis.call('ZADD', KEYS[4], ARGV[2], entry)
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
`;

/**
 * heartbeatConsumer — prove a consumer alive and keep its messages fresh.
 * KEYS[1] unacked, KEYS[2] unacked_index, KEYS[3] `_celeriac.consumers`,
 * KEYS[4] `_celeriac.owned.<consumer>`. ARGV[1] consumer id, ARGV[2] ttl ms.
 * Returns the number of owned messages refreshed.
 */
export const HEARTBEAT_CONSUMER_LUA = `${ENVELOPE_LUA}
redis.call('ZADD', KEYS[3], string.format('%.0f', now_ms() + tonumber(ARGV[2])), ARGV[1])
local now = now_seconds_text()
local tags = redis.call('SMEMBERS', KEYS[4])
for _, tag in ipairs(tags) do redis.call('ZADD', KEYS[2], 'XX', now, tag) end
return #tags
`;

/**
 * promoteDeferred — move due `_celeriac.eta` entries to the front of their queue.
 * KEYS[1] unacked, KEYS[2] unacked_index, KEYS[3] `_celeriac.eta`.
 * ARGV[1] limit, ARGV[2..] priority steps (ascending). Returns how many moved.
 */
export const PROMOTE_DEFERRED_LUA = `${ENVELOPE_LUA}${RESTORE_LUA}
local steps = {}
for i = 2, #ARGV do steps[#steps + 1] = tonumber(ARGV[i]) end
local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', string.format('%.0f', now_ms()), 'LIMIT', 0, tonumber(ARGV[1]))
for i = #due, 1, -1 do
  local entry = due[i]
  redis.call('ZREM', KEYS[3], entry)
  local env, ex, rk, wrapped = split_entry(entry)
  if env then
    local pri = 0
    if not wrapped then pri = envelope_priority(env) end
    for _, q in ipairs(lookup(ex, rk, nil)) do redis.call('RPUSH', bucket_key(q, pri, steps), env) end
  else
    redis.call('RPUSH', 'ae.undeliver', entry)
  end
end
return #due
`;

/**
 * restoreDeadConsumers — give back what consumers that stopped heart-beating held.
 * KEYS[1] unacked, KEYS[2] unacked_index, KEYS[3] `_celeriac.consumers`.
 * ARGV[1] calling consumer (skipped), ARGV[2] how long (ms) a dead id stays listed
 * (re-checked each time, in case it moved one more message while frozen),
 * ARGV[3] max consumers per call. Returns how many messages were restored.
 */
export const RESTORE_DEAD_CONSUMERS_LUA = `${ENVELOPE_LUA}${RESTORE_LUA}
local now = now_ms()
local dead = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', '(' .. string.format('%.0f', now), 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
local n = 0
for i = 1, #dead, 2 do
  local c, expired = dead[i], tonumber(dead[i + 1])
  if c ~= ARGV[1] then
    n = n + release_consumer(c, expired)
    if expired < now - tonumber(ARGV[2]) then redis.call('ZREM', KEYS[3], c) end
  end
end
return n
`;

/**
 * retireConsumer — a consumer closing: restore whatever it still holds, forget it.
 * KEYS[1] unacked, KEYS[2] unacked_index, KEYS[3] `_celeriac.consumers`.
 * ARGV[1] consumer id. Returns how many messages were restored.
 */
export const RETIRE_CONSUMER_LUA = `${ENVELOPE_LUA}${RESTORE_LUA}
local n = release_consumer(ARGV[1], math.huge)
redis.call('ZREM', KEYS[3], ARGV[1])
return n
`;

/**
 * restoreVisible — kombu's visibility-timeout restore, under kombu's mutex.
 * KEYS[1] unacked, KEYS[2] unacked_index, KEYS[3] unacked_mutex.
 * ARGV[1] lock token, ARGV[2] visibility timeout (seconds), ARGV[3] max per call.
 * Returns how many were restored, or -1 when another worker holds the mutex.
 */
export const RESTORE_VISIBLE_LUA = `${ENVELOPE_LUA}${RESTORE_LUA}
if not redis.call('SET', KEYS[3], ARGV[1], 'PX', 300000, 'NX') then return -1 end
local s, us = now_parts()
local ceiling = string.format('%.6f', s + us / 1000000 - tonumber(ARGV[2]))
local tags = redis.call('ZREVRANGEBYSCORE', KEYS[2], ceiling, 0, 'LIMIT', 0, tonumber(ARGV[3]))
local n = 0
for _, tag in ipairs(tags) do n = n + restore_tag(tag, false, nil) end
redis.call('DEL', KEYS[3])
return n
`;

/**
 * releaseHungConsumer — a consumer's event loop is stuck (its heartbeat thread saw
 * no progress for `workerHangTimeout`): give back everything it has not started and
 * settle the started messages by the acks-late rules. The consumer stays alive.
 * KEYS[1] unacked, KEYS[2] unacked_index. ARGV[1] consumer id, ARGV[2..] pairs of
 * started tag, action ("1" = drop from unacked, "2" = requeue at the back of its
 * queue). Started tags the consumer no longer owns are left alone.
 * Returns a status "<restored> <dropped> <requeued>".
 */
export const RELEASE_HUNG_CONSUMER_LUA = `${ENVELOPE_LUA}${RESTORE_LUA}
local owned = '_celeriac.owned.' .. ARGV[1]
local dropped, requeued = 0, 0
for i = 2, #ARGV, 2 do
  local tag = ARGV[i]
  if redis.call('SISMEMBER', owned, tag) == 1 then
    if ARGV[i + 1] == '2' then
      requeued = requeued + restore_tag(tag, true, nil)
    else
      dropped = dropped + redis.call('HDEL', KEYS[1], tag)
      redis.call('ZREM', KEYS[2], tag)
    end
    redis.call('SREM', owned, tag)
  end
end
local restored = release_consumer(ARGV[1], math.huge)
return { ok = restored .. ' ' .. dropped .. ' ' .. requeued }
`;
