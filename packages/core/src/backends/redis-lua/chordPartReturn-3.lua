--[[
  chordPartReturn: one chord header result, counted as Celery 5.2's Redis backend
  counts it (its on_chord_part_return pipeline: ZADD/ZCOUNT or RPUSH/LLEN, GET .t,
  GET .s, EXPIRE on all three), plus the step Celery runs as separate commands once
  the count is complete: read the results and DEL the keys. Being one script, only
  the call that completes the count gets the results, and the keys are gone before
  any other call runs: the body is sent exactly once, even when the last members
  finish at the same instant on different workers. A Python worker's pipeline on
  the same keys is atomic too, so mixed headers count together.
  When a member failed (FAILURE / REVOKED) the keys are kept, to expire: Celery
  raises ChordError while unpacking the results, before its DEL, so a caller can
  still read every member's state from .j (Celery's test_chord_on_error does).
  KEYS[1] celery-taskset-meta-<gid>.j  KEYS[2] ...t  KEYS[3] ...s
  ARGV[1] member JSON [1, task_id, state, result]; ARGV[2] score (group_index or
  '+inf'); ARGV[3] expiry seconds (0 = none); ARGV[4] '1' sorted set (Celery's
  default, result_chord_ordered) or '0' list
  Returns {0, count} while waiting (or when no chord size is stored), {1, count,
  member...} (ordered by group_index) to the call that completed the chord.
]]
local ordered = ARGV[4] == '1'
local count
if ordered then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
  count = redis.call('ZCOUNT', KEYS[1], '-inf', '+inf')
else
  redis.call('RPUSH', KEYS[1], ARGV[1])
  count = redis.call('LLEN', KEYS[1])
end
local added = redis.call('GET', KEYS[2])
local size = redis.call('GET', KEYS[3])
local ttl = tonumber(ARGV[3])
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
  redis.call('EXPIRE', KEYS[3], ttl)
end
if not size then return {0, count} end
local total = tonumber(size) + tonumber(added or '0')
if count ~= total then return {0, count} end
local members
if ordered then
  members = redis.call('ZRANGE', KEYS[1], 0, -1)
else
  members = redis.call('LRANGE', KEYS[1], 0, total)
end
local failed = false
for i = 1, #members do
  local ok, member = pcall(cjson.decode, members[i])
  if ok and type(member) == 'table' and (member[3] == 'FAILURE' or member[3] == 'REVOKED') then
    failed = true
    break
  end
end
if not failed then redis.call('DEL', KEYS[1], KEYS[2], KEYS[3]) end
local out = {1, count}
for i = 1, #members do out[#out + 1] = members[i] end
return out
