-- Give up the beat leader lock, only if we hold it (a stopping leader; a standby then takes over at once).
-- KEYS[1] = _celeriac.beat.lock
-- ARGV[1] = owner id
-- Returns 1 when released, 0 when it was not ours.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
