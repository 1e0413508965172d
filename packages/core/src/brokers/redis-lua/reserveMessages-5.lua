--[[
  reserveMessages: take up to ARGV[1] messages and record them unacked, atomically.
  KEYS[1] unacked                       (hash tag -> kombu entry)
  KEYS[2] unacked_index                 (zset tag -> unix seconds)
  KEYS[3] _celeriac.owned.<consumer>    (this consumer's tags)
  KEYS[4] _celeriac.inflight.<consumer> (list BLMOVE filled)
  KEYS[5] _celeriac.leases              (hash tag -> lease of its current holder)
  KEYS[6..] ready lists, priority-major
  ARGV[1] max
  ARGV[2] tag prefix for messages without a usable delivery tag (none, not valid UTF-8, or already unacked)
  ARGV[3] queue the inflight list was filled from
  ARGV[4] lease prefix ("<consumer>:<random>:"); the lease of the n-th message is prefix .. n
  ARGV[5..] queue of KEYS[6..]
  Returns a flat array of quadruples: envelope, tag, source (0 = inflight, i = KEYS[5 + i]), lease.
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
  redis.call('SADD', KEYS[3], tag)
  local lease = ARGV[4] .. n
  redis.call('HSET', KEYS[5], tag, lease)
  n = n + 1
  out[#out + 1] = p
  out[#out + 1] = tag
  out[#out + 1] = src
  out[#out + 1] = lease
end
while n < max do
  local p = redis.call('RPOP', KEYS[4])
  if not p then break end
  take(p, 0, ARGV[3])
end
for i = 6, #KEYS do
  if n >= max then break end
  local batch = redis.call('RPOP', KEYS[i], max - n)
  if batch then
    for _, p in ipairs(batch) do take(p, i - 5, ARGV[i - 1]) end
  end
end
return out
