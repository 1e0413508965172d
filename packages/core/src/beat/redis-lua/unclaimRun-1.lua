-- Put back the last run of an entry whose send failed, if the claimed record is still there.
-- KEYS[1] = _celeriac.beat.state
-- ARGV[1] = entry name, ARGV[2] = the claimed JSON, ARGV[3] = the previous JSON
-- Returns 1 when put back, 0 when the record had changed meanwhile.
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  return 1
end
return 0
