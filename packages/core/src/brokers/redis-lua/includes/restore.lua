-- Routing and restoring (kombu direct-exchange lookup, priority buckets, restore of unacked tags).
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
-- RPUSH = consumed next (kombu restore), LPUSH = back of the line (kombu reject+requeue);
-- "lost" = its holder died or stalled: counted in _celeriac.redeliveries
local function restore_tag(tag, leftmost, fallback, lost)
  local entry = redis.call('HGET', KEYS[1], tag)
  redis.call('ZREM', KEYS[2], tag)
  if not entry then return 0 end
  local env, ex, rk, wrapped = split_entry(entry)
  if not env then return 0 end
  redis.call('HDEL', KEYS[1], tag)
  if lost then
    redis.call('HINCRBY', '_celeriac.redeliveries', tag, 1)
    redis.call('ZADD', '_celeriac.redeliveries.at', string.format('%.0f', now_ms()), tag)
  end
  if not wrapped then env = mark_redelivered(env) end
  local cmd = 'RPUSH'
  if leftmost then cmd = 'LPUSH' end
  for _, q in ipairs(lookup(ex, rk, fallback)) do redis.call(cmd, q, env) end
  return 1
end
-- restore what consumer c held: owned tags recorded before "until_ms" (later records
-- belong to whoever got the message after it was restored), and the inflight list
-- earlier versions used; deleting the owned set ends c's leases (its late settles are no-ops)
local function release_consumer(c, until_ms)
  local n = 0
  local owned = '_celeriac.owned.' .. c
  for _, member in ipairs(redis.call('SMEMBERS', owned)) do
    local tag = owned_tag(member)
    local score = tonumber(redis.call('ZSCORE', KEYS[2], tag))
    if not score or score * 1000 <= until_ms then n = n + restore_tag(tag, false, nil, true) end
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
