--[[
  ackMessages: acknowledge messages this consumer still holds (kombu's ZREM + HDEL).
  KEYS[1] unacked, KEYS[2] unacked_index, KEYS[3] _celeriac.owned.<consumer>
  ARGV triples of tag, lease, "1" when the message has a redelivery count to forget
  A reservation is held while "<lease>\6\22<tag>" is in the consumer's owned set. A
  message restored after its holder died or stalled (the owned set is deleted then) and
  taken again belongs to its new holder: its entry is left alone. Acking twice is harmless.
  Returns the tags left alone because another holder has them.
]]
local SEP = '\6\22'
local stale = {}
for i = 1, #ARGV, 3 do
  local tag = ARGV[i]
  if redis.call('SREM', KEYS[3], ARGV[i + 1] .. SEP .. tag) == 1 then
    redis.call('ZREM', KEYS[2], tag)
    redis.call('HDEL', KEYS[1], tag)
    if ARGV[i + 2] == '1' then redis.call('HDEL', '_celeriac.redeliveries', tag) end
  elseif redis.call('HEXISTS', KEYS[1], tag) == 1 then
    stale[#stale + 1] = tag
  end
end
return stale
