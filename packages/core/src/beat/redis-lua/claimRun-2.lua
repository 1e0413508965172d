-- Record a run of one beat entry, if nobody else did and (optionally) we lead.
-- KEYS[1] = _celeriac.beat.state (hash: entry name -> {"lastRunAt": ms, "totalRunCount": n})
-- KEYS[2] = _celeriac.beat.lock (the leader lock)
-- ARGV[1] = entry name
-- ARGV[2] = lastRunAt this beat saw (the run is due after it), ARGV[3] = its totalRunCount
-- ARGV[4] = the new record (JSON)
-- ARGV[5] = this beat's lock owner id, or '' to skip the leader check
-- Returns 1 = claimed (send it), 0 = another beat recorded a run first, -1 = not the leader.
-- A stored record that is not readable JSON is replaced (never blocks the entry forever).
if ARGV[5] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[5] then
  return -1
end
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  local ok, record = pcall(cjson.decode, current)
  if ok and type(record) == 'table' and (record.lastRunAt ~= tonumber(ARGV[2]) or (record.totalRunCount or 0) ~= tonumber(ARGV[3])) then
    return 0
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
return 1
