--[[
  releaseHungConsumer: a consumer's event loop is stuck (its heartbeat thread saw no
  progress for workerHangTimeout). Give back everything it has not started (owned
  unacked messages and its inflight list, to the front of their queues, marked
  redelivered) and settle the started ones the way Celery settles a lost worker's:
  drop (ack) or requeue at the back of the line. The consumer itself stays alive.
  KEYS[1] unacked, KEYS[2] unacked_index, KEYS[3] _celeriac.leases
  ARGV[1] consumer id, ARGV[2..] pairs of started tag, action ("1" = drop, "2" = requeue)
  Started tags leased to another consumer (restored and taken again) are left alone.
  Returns a status "<restored> <dropped> <requeued>".
]]
--- @include "envelope"
--- @include "restore"
local c = ARGV[1]
local owned = '_celeriac.owned.' .. c
local mine = c .. ':'
local dropped, requeued = 0, 0
for i = 2, #ARGV, 2 do
  local tag = ARGV[i]
  local lease = redis.call('HGET', KEYS[3], tag)
  if redis.call('SISMEMBER', owned, tag) == 1 and (not lease or string.sub(lease, 1, #mine) == mine) then
    if ARGV[i + 1] == '2' then
      requeued = requeued + restore_tag(tag, true, nil)
    else
      dropped = dropped + redis.call('HDEL', KEYS[1], tag)
      redis.call('ZREM', KEYS[2], tag)
      redis.call('HDEL', KEYS[3], tag)
    end
    redis.call('SREM', owned, tag)
  end
end
local restored = release_consumer(c, math.huge)
return { ok = restored .. ' ' .. dropped .. ' ' .. requeued }
