--[[
  restoreDeadConsumers: give back what consumers that stopped heart-beating held.
  KEYS[1] unacked, KEYS[2] unacked_index, KEYS[3] _celeriac.consumers
  ARGV[1] calling consumer (skipped)
  ARGV[2] how long (ms) a dead id stays listed (re-checked in case it moved one more message while frozen)
  ARGV[3] max consumers per call
  Returns how many messages were restored.
]]
--- @include "envelope"
--- @include "restore"
local now = now_ms()
local dead = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', '(' .. string.format('%.0f', now), 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
local n = 0
for i = 1, #dead, 2 do
  local c, expired = dead[i], tonumber(dead[i + 1])
  if c ~= ARGV[1] then
    n = n + release_consumer(c, expired)
    if expired < now - tonumber(ARGV[2]) then redis.call('ZREM', KEYS[3], c) end
  end
end
return n
