--[[
  restoreTags: give messages back (reject with requeue, restore).
  KEYS[1] unacked, KEYS[2] unacked_index, KEYS[3] _celeriac.owned.<consumer>, KEYS[4] _celeriac.leases
  ARGV[1] "1" = LPUSH (back of the line) / "0" = RPUSH (consumed next)
  ARGV[2..] triples of tag, lease, queue it came from (used when unroutable)
  A tag whose lease is not the given one (restored to another holder meanwhile) is left alone.
  Returns the tags left alone.
]]
--- @include "envelope"
--- @include "restore"
local stale = {}
for i = 2, #ARGV, 3 do
  local tag = ARGV[i]
  if redis.call('HGET', KEYS[4], tag) == ARGV[i + 1] then
    restore_tag(tag, ARGV[1] == '1', ARGV[i + 2], false)
  else
    stale[#stale + 1] = tag
  end
  redis.call('SREM', KEYS[3], tag)
end
return stale
