--[[
  deferMessage: move an unacked message to the broker-side ETA zset.
  KEYS[1] unacked, KEYS[2] unacked_index, KEYS[3] _celeriac.owned.<consumer>, KEYS[4] _celeriac.eta
  ARGV[1] tag, ARGV[2] lease, ARGV[3] delay (ms from now)
  The zset member is "<lease>\6\22<unacked entry>": unique per reservation, so identical
  messages parked for the same time stay two entries. The due time is Redis TIME + delay,
  the clock promoteDeferred compares with.
  Returns 1 when moved, 0 when the caller no longer holds the tag (restored to another holder meanwhile).
]]
--- @include "envelope"
if redis.call('SREM', KEYS[3], ARGV[2] .. SEP .. ARGV[1]) == 0 then return 0 end
local entry = redis.call('HGET', KEYS[1], ARGV[1])
if not entry then return 0 end
redis.call('ZADD', KEYS[4], string.format('%.0f', now_ms() + math.max(0, tonumber(ARGV[3]))), ARGV[2] .. SEP .. entry)
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
