--[[
  ackMessages: acknowledge messages this consumer still holds (kombu's ZREM + HDEL).
  KEYS[1] unacked, KEYS[2] unacked_index, KEYS[3] _celeriac.owned.<consumer>
  ARGV triples of tag, lease, "1" when the message has a redelivery count to forget
  A reservation is held while "<lease>\6\22<tag>" is in the consumer's owned set. A
  message restored after its holder died or stalled (the owned set is deleted then) and
  taken again belongs to its new holder: its entry is left alone. Acking twice is harmless.
  Returns the tags left alone because another holder has them.
  Batched: one SMISMEMBER for all reservations, then one variadic SREM, ZREM, HDEL
  (and HDEL of redelivery counts when flagged) per 500 tags, not 3-4 commands per tag.
]]
local SEP = '\6\22'
local CHUNK = 500
local stale = {}
for c = 1, #ARGV, 3 * CHUNK do
  local last = math.min(#ARGV, c + 3 * CHUNK - 1)
  local members, tags, forget = {}, {}, {}
  for i = c, last, 3 do
    tags[#tags + 1] = ARGV[i]
    members[#members + 1] = ARGV[i + 1] .. SEP .. ARGV[i]
  end
  local held = redis.call('SMISMEMBER', KEYS[3], unpack(members))
  local mine, mine_members = {}, {}
  for j, tag in ipairs(tags) do
    if held[j] == 1 then
      mine[#mine + 1] = tag
      mine_members[#mine_members + 1] = members[j]
      if ARGV[c + 3 * (j - 1) + 2] == '1' then forget[#forget + 1] = tag end
    elseif redis.call('HEXISTS', KEYS[1], tag) == 1 then
      stale[#stale + 1] = tag
    end
  end
  if #mine > 0 then
    redis.call('SREM', KEYS[3], unpack(mine_members))
    redis.call('ZREM', KEYS[2], unpack(mine))
    redis.call('HDEL', KEYS[1], unpack(mine))
  end
  if #forget > 0 then
    redis.call('HDEL', '_celeriac.redeliveries', unpack(forget))
    redis.call('ZREM', '_celeriac.redeliveries.at', unpack(forget))
  end
end
return stale
