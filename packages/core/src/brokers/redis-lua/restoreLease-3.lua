--[[
  restoreLease: give back every message one reserve call took, found by its lease
  prefix. For a reserve whose reply never arrived (its connection dropped with the
  outcome unknown): what it took is otherwise held, and kept fresh, until shutdown.
  KEYS[1] unacked, KEYS[2] unacked_index, KEYS[3] _celeriac.owned.<consumer>
  ARGV[1] lease prefix of that reserve ("<random>:"), ARGV[2] queue (used when unroutable)
  Returns how many messages were given back (RPUSH: consumed next, marked redelivered).
]]
--- @include "envelope"
--- @include "restore"
local prefix = ARGV[1]
local n = 0
for _, member in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  if string.sub(member, 1, #prefix) == prefix then
    redis.call('SREM', KEYS[3], member)
    n = n + restore_tag(owned_tag(member), false, ARGV[2], false)
  end
end
return n
