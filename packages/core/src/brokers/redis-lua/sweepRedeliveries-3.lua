--[[
  sweepRedeliveries: forget redelivery counts nobody will read. A count is written when a
  message is restored after its holder died or stalled, and deleted when a Celeriac worker
  acks it; a Python worker's ack (kombu's ZREM + HDEL) leaves it behind. A count unchanged
  for ARGV[1] ms whose message is not unacked (held) now is deleted; a held one is kept
  and looked at again after another ARGV[1] ms.
  KEYS[1] unacked, KEYS[2] _celeriac.redeliveries, KEYS[3] _celeriac.redeliveries.at
  ARGV[1] age (ms), ARGV[2] most tags per call
  Returns how many counts were deleted.
]]
--- @include "envelope"
local now = now_ms()
local old = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', string.format('%.0f', now - tonumber(ARGV[1])), 'LIMIT', 0, tonumber(ARGV[2]))
if #old == 0 then return 0 end
local gone, held = {}, {}
local present = redis.call('HMGET', KEYS[1], unpack(old))
for i, tag in ipairs(old) do
  if present[i] then
    held[#held + 1] = string.format('%.0f', now)
    held[#held + 1] = tag
  else
    gone[#gone + 1] = tag
  end
end
if #held > 0 then redis.call('ZADD', KEYS[3], unpack(held)) end
if #gone > 0 then
  redis.call('HDEL', KEYS[2], unpack(gone))
  redis.call('ZREM', KEYS[3], unpack(gone))
end
return #gone
