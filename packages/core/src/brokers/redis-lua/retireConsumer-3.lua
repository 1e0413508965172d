--[[
  retireConsumer: a consumer closing restores whatever it still holds and is forgotten.
  KEYS[1] unacked, KEYS[2] unacked_index, KEYS[3] _celeriac.consumers
  ARGV[1] consumer id
  Returns how many messages were restored.
]]
--- @include "envelope"
--- @include "restore"
local n = release_consumer(ARGV[1], math.huge)
redis.call('ZREM', KEYS[3], ARGV[1])
return n
