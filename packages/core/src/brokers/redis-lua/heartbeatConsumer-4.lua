--[[
  heartbeatConsumer: prove a consumer alive and keep its messages fresh.
  KEYS[1] unacked, KEYS[2] unacked_index, KEYS[3] _celeriac.consumers,
  KEYS[4] _celeriac.owned.<consumer> (members "<lease>\6\22<tag>")
  ARGV[1] consumer id, ARGV[2] ttl ms
  Returns the number of owned messages refreshed.
]]
--- @include "envelope"
redis.call('ZADD', KEYS[3], string.format('%.0f', now_ms() + tonumber(ARGV[2])), ARGV[1])
local now = now_seconds_text()
local held = redis.call('SMEMBERS', KEYS[4])
-- one variadic ZADD XX per 500 held messages (not one per message)
for c = 1, #held, 500 do
  local args = { 'XX' }
  for i = c, math.min(#held, c + 499) do
    args[#args + 1] = now
    args[#args + 1] = owned_tag(held[i])
  end
  redis.call('ZADD', KEYS[2], unpack(args))
end
return #held
