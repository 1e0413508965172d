--[[
  ackMessages: acknowledge messages held under the given leases (kombu's ZREM + HDEL).
  KEYS[1] unacked, KEYS[2] unacked_index, KEYS[3] _celeriac.owned.<consumer>, KEYS[4] _celeriac.leases
  ARGV pairs of tag, lease
  A tag whose lease is not the given one was restored to another holder meanwhile:
  its entry belongs to that holder and is left alone. Idempotent: acking twice is harmless.
  Returns the tags left alone.
]]
local stale = {}
for i = 1, #ARGV, 2 do
  local tag = ARGV[i]
  local lease = redis.call('HGET', KEYS[4], tag)
  if lease == ARGV[i + 1] then
    redis.call('ZREM', KEYS[2], tag)
    redis.call('HDEL', KEYS[1], tag)
    redis.call('HDEL', KEYS[4], tag)
    redis.call('HDEL', '_celeriac.redeliveries', tag)
  elseif lease or redis.call('HEXISTS', KEYS[1], tag) == 1 then
    stale[#stale + 1] = tag
  end
  redis.call('SREM', KEYS[3], tag)
end
return stale
