--[[
  reserveMessages: take up to ARGV[1] messages and record them unacked, atomically.
  KEYS[1] unacked                       (hash tag -> kombu entry)
  KEYS[2] unacked_index                 (zset tag -> unix seconds)
  KEYS[3] _celeriac.owned.<consumer>    (set of "<lease>\6\22<tag>": what this consumer holds)
  KEYS[4..] ready lists, priority-major
  ARGV[1] max
  ARGV[2] tag prefix for messages without a usable delivery tag (none, not valid UTF-8, or already unacked)
  ARGV[3] lease prefix ("<random>:"); the lease of the n-th message is prefix .. n
  ARGV[4..] queue of KEYS[4..] (the routing key recorded for an envelope that is not JSON)
  Returns a flat array of quintuples: envelope, tag, source (i = KEYS[3 + i]), lease,
  redeliveries (times restored after its holder died or stalled, from _celeriac.redeliveries;
  looked up only for envelopes marked redelivered).
]]
--- @include "envelope"
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
  if not tag or not valid_utf8(tag) or redis.call('HEXISTS', KEYS[1], tag) == 1 then tag = ARGV[2] .. n end
  redis.call('ZADD', KEYS[2], now, tag)
  redis.call('HSET', KEYS[1], tag, unacked_entry(p, ex, rk, is_json))
  local lease = ARGV[3] .. n
  redis.call('SADD', KEYS[3], lease .. SEP .. tag)
  n = n + 1
  out[#out + 1] = p
  out[#out + 1] = tag
  out[#out + 1] = src
  out[#out + 1] = lease
  local redeliveries = 0
  if string.find(p, '"redelivered": true', 1, true) then
    redeliveries = tonumber(redis.call('HGET', '_celeriac.redeliveries', tag) or '0')
  end
  out[#out + 1] = redeliveries
end
for i = 4, #KEYS do
  if n >= max then break end
  local batch = redis.call('RPOP', KEYS[i], max - n)
  if batch then
    for _, p in ipairs(batch) do take(p, i - 3, ARGV[i]) end
  end
end
return out
