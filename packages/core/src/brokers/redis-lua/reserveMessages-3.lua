--[[
  reserveMessages: take up to ARGV[1] messages and record them unacked, atomically.
  KEYS[1] unacked                       (hash tag -> kombu entry)
  KEYS[2] unacked_index                 (zset tag -> unix seconds)
  KEYS[3] _celeriac.owned.<consumer>    (set of "<lease>\6\22<tag>": what this consumer holds)
  KEYS[4..] ready lists, priority-major
  ARGV[1] max
  ARGV[2] tag prefix for messages without a usable delivery tag (none, not valid UTF-8, or already unacked)
  ARGV[3] lease prefix ("<random>:"); the lease of the n-th message is prefix .. n
  ARGV[4] largest envelope (bytes) returned whole; 0 = no limit
  ARGV[5] "" or a consumer id: take nothing unless that consumer's heartbeat in
          _celeriac.consumers is current. Set by a reserve queued behind a blocking wait,
          which Redis runs when the wait ends even if its worker is frozen meanwhile: a
          worker its peers declared dead must not take messages on its own behalf.
  ARGV[6..] queue of KEYS[4..] (the routing key recorded for an envelope that is not JSON)
  Returns a flat array of sextuples: envelope, tag, source (i = KEYS[3 + i]), lease,
  redeliveries (times restored after its holder died or stalled, from _celeriac.redeliveries;
  looked up only for envelopes marked redelivered), size of the envelope in bytes.
  An envelope over ARGV[4] is reserved like any other (the worker rejects it) but not
  sent: its first field is then its task id (headers.id, "" when not found), so a 50 MB
  message costs the worker nothing.
  Writes are batched: one HMGET for tag collisions, one HMGET of the redelivery counts
  (only if a message is marked redelivered) and one variadic ZADD, HSET, SADD per 500
  messages, so a reservation costs a handful of commands, not 4-5 per message.
]]
--- @include "envelope"
local max = tonumber(ARGV[1])
local max_bytes = tonumber(ARGV[4])
local CHUNK = 500
local W = 6
-- headers.id of an envelope (a plain string), or ""
local function task_id(p)
  if string.sub(p, 1, 1) ~= '{' then return '' end
  local h = object_at(p, 1, 'headers')
  if not h then return '' end
  local v, e = member(p, h, 'id')
  if not v or string.sub(p, v, v) ~= '"' then return '' end
  local id = string.sub(p, v + 1, e - 1)
  if string.find(id, '\\', 1, true) or not valid_utf8(id) then return '' end
  return id
end
local out, n = {}, 0
if ARGV[5] ~= '' then
  local alive_until = tonumber(redis.call('ZSCORE', '_celeriac.consumers', ARGV[5]))
  if not alive_until or alive_until < now_ms() then return out end
end
local tags, entries, marked = {}, {}, {}
local function take(p, src, queue)
  local ex, rk, tag = quick_fields(p)
  local is_json = true
  if not ex then
    ex, rk, tag, is_json = slow_fields(p)
    if not ex then ex, rk = '', queue end
  end
  if tag and not valid_utf8(tag) then tag = nil end
  n = n + 1
  tags[n] = tag or false
  entries[n] = unacked_entry(p, ex, rk, is_json)
  if string.find(p, '"redelivered": true', 1, true) then marked[#marked + 1] = n end
  local base = (n - 1) * W
  if max_bytes > 0 and #p > max_bytes then out[base + 1] = task_id(p) else out[base + 1] = p end
  out[base + 2] = false
  out[base + 3] = src
  out[base + 4] = ARGV[3] .. (n - 1)
  out[base + 5] = 0
  out[base + 6] = #p
end
for i = 4, #KEYS do
  if n >= max then break end
  local batch = redis.call('RPOP', KEYS[i], max - n)
  if batch then
    for _, p in ipairs(batch) do take(p, i - 3, ARGV[i + 2]) end
  end
end
if n == 0 then return out end
-- a tag already unacked (or repeated in this batch) gets a fresh one
local given = {}
for i = 1, n do if tags[i] then given[#given + 1] = tags[i] end end
local used = {}
for c = 1, #given, CHUNK do
  local part = { unpack(given, c, math.min(#given, c + CHUNK - 1)) }
  local found = redis.call('HMGET', KEYS[1], unpack(part))
  for j = 1, #part do if found[j] then used[part[j]] = true end end
end
for i = 1, n do
  local tag = tags[i]
  if not tag or used[tag] then tag = ARGV[2] .. (i - 1) end
  used[tag] = true
  tags[i] = tag
  out[(i - 1) * W + 2] = tag
end
for c = 1, #marked, CHUNK do
  local idx, names = {}, {}
  for j = c, math.min(#marked, c + CHUNK - 1) do
    idx[#idx + 1] = marked[j]
    names[#names + 1] = tags[marked[j]]
  end
  local counts = redis.call('HMGET', '_celeriac.redeliveries', unpack(names))
  for j = 1, #idx do out[(idx[j] - 1) * W + 5] = tonumber(counts[j] or '0') end
end
local now = now_seconds_text()
for c = 1, n, CHUNK do
  local z, h, o = {}, {}, {}
  for i = c, math.min(n, c + CHUNK - 1) do
    z[#z + 1] = now
    z[#z + 1] = tags[i]
    h[#h + 1] = tags[i]
    h[#h + 1] = entries[i]
    o[#o + 1] = out[(i - 1) * W + 4] .. SEP .. tags[i]
  end
  redis.call('ZADD', KEYS[2], unpack(z))
  redis.call('HSET', KEYS[1], unpack(h))
  redis.call('SADD', KEYS[3], unpack(o))
end
return out
