-- Record a run of one beat entry, if nobody else did and (optionally) we lead.
-- KEYS[1] = _celeriac.beat.state (hash: entry name -> last-run JSON)
-- KEYS[2] = _celeriac.beat.lock (the leader lock)
-- ARGV[1] = entry name
-- ARGV[2] = the last-run JSON this beat saw (the run is due after it)
-- ARGV[3] = the new last-run JSON
-- ARGV[4] = this beat's lock owner id, or '' to skip the leader check
-- Returns 1 = claimed (send it), 0 = another beat recorded a run first, -1 = not the leader.
if ARGV[4] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[4] then
  return -1
end
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current and current ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
