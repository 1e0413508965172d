-- Extend the beat leader lock, only if we still hold it (compare-and-renew).
-- KEYS[1] = _celeriac.beat.lock
-- ARGV[1] = owner id, ARGV[2] = time to live in ms
-- Returns 1 when renewed, 0 when the lock is someone else's or gone.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
