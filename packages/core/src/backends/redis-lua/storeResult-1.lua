--[[
  storeResult: Celery's write. Skip when SUCCESS is already stored, else SETEX (SET
  when the TTL is 0) and PUBLISH the same JSON.
  KEYS[1] celery-task-meta-<id>
  ARGV[1] document JSON, ARGV[2] TTL seconds (0 = no expiry)
  Returns 1 when written, 0 when an earlier SUCCESS was kept.
  Used per document on Redis < 6.2, which has no SET ... GET for storeResults.
]]
local current = redis.call('GET', KEYS[1])
if current then
  local status
  if string.sub(current, 1, 12) == '{"status": "' then
    status = string.match(current, '^{"status": "([^"]*)"')
  else
    local ok, doc = pcall(cjson.decode, current)
    if ok and type(doc) == 'table' then status = doc['status'] end
    -- result_serializer msgpack: a map, read with Redis's built-in cmsgpack; yaml: a top-level status line.
    if not status then
      local okm, m = pcall(cmsgpack.unpack, current)
      if okm and type(m) == 'table' then status = m['status'] end
    end
    if not status then status = string.match(current, '^status: (%u+)') or string.match(current, '\nstatus: (%u+)') end
  end
  if status == 'SUCCESS' then return 0 end
end
if tonumber(ARGV[2]) > 0 then
  redis.call('SETEX', KEYS[1], ARGV[2], ARGV[1])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
redis.call('PUBLISH', KEYS[1], ARGV[1])
return 1
