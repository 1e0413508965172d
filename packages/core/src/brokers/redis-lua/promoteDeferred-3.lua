--[[
  promoteDeferred: move due _celeriac.eta entries ("<lease>\6\22<unacked entry>") to the front of their queue.
  KEYS[1] unacked, KEYS[2] unacked_index, KEYS[3] _celeriac.eta
  ARGV[1] limit, ARGV[2..] priority steps (ascending)
  Returns how many moved.
]]
--- @include "envelope"
--- @include "restore"
local steps = {}
for i = 2, #ARGV do steps[#steps + 1] = tonumber(ARGV[i]) end
local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', string.format('%.0f', now_ms()), 'LIMIT', 0, tonumber(ARGV[1]))
for i = #due, 1, -1 do
  local entry = due[i]
  redis.call('ZREM', KEYS[3], entry)
  -- "<lease>SEP<entry>" (entries parked by older versions start with "[" and have no prefix)
  if string.sub(entry, 1, 1) ~= '[' then
    local cut = string.find(entry, SEP, 1, true)
    if cut then entry = string.sub(entry, cut + #SEP) end
  end
  local env, ex, rk, wrapped = split_entry(entry)
  if env then
    local pri = 0
    if not wrapped then pri = envelope_priority(env) end
    for _, q in ipairs(lookup(ex, rk, nil)) do redis.call('RPUSH', bucket_key(q, pri, steps), env) end
  else
    redis.call('RPUSH', 'ae.undeliver', entry)
  end
end
return #due
