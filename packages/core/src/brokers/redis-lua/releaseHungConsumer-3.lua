--[[
  releaseHungConsumer: a consumer's event loop is stuck (its heartbeat thread saw no
  progress for workerHangTimeout). Give back everything it has not started (owned
  unacked messages and its inflight list, to the front of their queues, marked
  redelivered) and settle the started ones the way Celery settles a lost worker's:
  drop (ack) or requeue at the back of the line, counted as a redelivery after a
  lost worker (workerMaxRedeliveries). The consumer itself stays alive; deleting its
  owned set ends its leases, so what it settles later itself is a no-op.
  KEYS[1] unacked, KEYS[2] unacked_index, KEYS[3] _celeriac.owned.<consumer>
  ARGV[1] consumer id, ARGV[2..] pairs of started tag, action ("1" = drop, "2" = requeue)
  Started tags this consumer no longer holds are left alone.
  Returns a status "<restored> <dropped> <requeued>".
]]
--- @include "envelope"
--- @include "restore"
local held = {}
for _, member in ipairs(redis.call('SMEMBERS', KEYS[3])) do held[owned_tag(member)] = member end
local dropped, requeued = 0, 0
for i = 2, #ARGV, 2 do
  local tag = ARGV[i]
  local member = held[tag]
  if member then
    redis.call('SREM', KEYS[3], member)
    if ARGV[i + 1] == '2' then
      requeued = requeued + restore_tag(tag, true, nil, true)
    else
      dropped = dropped + redis.call('HDEL', KEYS[1], tag)
      redis.call('ZREM', KEYS[2], tag)
      redis.call('HDEL', '_celeriac.redeliveries', tag)
      redis.call('ZREM', '_celeriac.redeliveries.at', tag)
    end
  end
end
local restored = release_consumer(ARGV[1], math.huge)
return { ok = restored .. ' ' .. dropped .. ' ' .. requeued }
