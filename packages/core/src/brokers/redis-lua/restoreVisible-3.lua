--[[
  restoreVisible: kombu's visibility-timeout restore, under kombu's mutex.
  KEYS[1] unacked, KEYS[2] unacked_index, KEYS[3] unacked_mutex
  ARGV[1] lock token, ARGV[2] visibility timeout (seconds), ARGV[3] max per call
  Returns how many were restored, or -1 when another worker holds the mutex.
]]
--- @include "envelope"
--- @include "restore"
if not redis.call('SET', KEYS[3], ARGV[1], 'PX', 300000, 'NX') then return -1 end
local s, us = now_parts()
local ceiling = string.format('%.6f', s + us / 1000000 - tonumber(ARGV[2]))
local tags = redis.call('ZREVRANGEBYSCORE', KEYS[2], ceiling, 0, 'LIMIT', 0, tonumber(ARGV[3]))
local n = 0
for _, tag in ipairs(tags) do n = n + restore_tag(tag, false, nil, true) end
redis.call('DEL', KEYS[3])
return n
