--[[
  restoreTags: give messages back (reject with requeue, restore).
  KEYS[1] unacked, KEYS[2] unacked_index, KEYS[3] _celeriac.owned.<consumer>
  ARGV[1] "1" = LPUSH (back of the line) / "0" = RPUSH (consumed next)
  ARGV[2..] pairs of tag, queue it came from (used when unroutable)
  Returns how many were restored.
]]
--- @include "envelope"
--- @include "restore"
local n = 0
for i = 2, #ARGV, 2 do
  n = n + restore_tag(ARGV[i], ARGV[1] == '1', ARGV[i + 1])
  redis.call('SREM', KEYS[3], ARGV[i])
end
return n
