--[[
  ackMessages: acknowledge messages held under the given leases (kombu's ZREM + HDEL).
  KEYS[1] unacked, KEYS[2] unacked_index, KEYS[3] _celeriac.owned.<consumer>, KEYS[4] _celeriac.leases
  ARGV pairs of tag, lease
  A tag whose lease is not the given one was restored to another holder meanwhile:
  its entry belongs to that holder and is left alone. Idempotent: acking twice is harmless.
  Returns the tags left alone.
  Batched: one HMGET of the leases, then one variadic ZREM, HDEL (unacked, leases,
  redeliveries) and SREM per 500 tags, instead of 6 commands per tag.
]]
local CHUNK = 500
local stale = {}
for c = 1, #ARGV, 2 * CHUNK do
  local last = math.min(#ARGV, c + 2 * CHUNK - 1)
  local tags = {}
  for i = c, last, 2 do tags[#tags + 1] = ARGV[i] end
  local leases = redis.call('HMGET', KEYS[4], unpack(tags))
  local mine = {}
  for j, tag in ipairs(tags) do
    local lease = leases[j]
    if lease == ARGV[c + 2 * (j - 1) + 1] then
      mine[#mine + 1] = tag
    elseif lease or redis.call('HEXISTS', KEYS[1], tag) == 1 then
      stale[#stale + 1] = tag
    end
  end
  if #mine > 0 then
    redis.call('ZREM', KEYS[2], unpack(mine))
    redis.call('HDEL', KEYS[1], unpack(mine))
    redis.call('HDEL', KEYS[4], unpack(mine))
    redis.call('HDEL', '_celeriac.redeliveries', unpack(mine))
  end
  redis.call('SREM', KEYS[3], unpack(tags))
end
return stale
