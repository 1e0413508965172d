--[[
  restoreTags: give messages back (reject with requeue, restore).
  KEYS[1] unacked, KEYS[2] unacked_index, KEYS[3] _celeriac.owned.<consumer>
  ARGV[1] "1" = LPUSH (back of the line) / "0" = RPUSH (consumed next)
  ARGV[2..] triples of tag, lease, queue it came from (used when unroutable)
  Only reservations still held ("<lease>\6\22<tag>" in the owned set) are given back.
  Returns the tags left alone because this consumer no longer holds them.
]]
--- @include "envelope"
--- @include "restore"
local stale = {}
for i = 2, #ARGV, 3 do
  local tag = ARGV[i]
  if redis.call('SREM', KEYS[3], ARGV[i + 1] .. SEP .. tag) == 1 then
    restore_tag(tag, ARGV[1] == '1', ARGV[i + 2], false)
  else
    stale[#stale + 1] = tag
  end
end
return stale
