--[[
  storeResults: storeResult for a batch in one call, 2 commands per document instead of
  4 (EVALSHA, GET, SETEX, PUBLISH). `SET key doc EX ttl GET` writes and returns the
  previous value in one command; if that was a SUCCESS it is put back (its expiry
  restarts: the only difference from storeResult, for a rare duplicate run) and nothing
  is published, else the document is PUBLISHed. A later document for the same key in
  the batch sees the earlier one, as with separate calls. A key Redis refuses (e.g.
  WRONGTYPE: not a string) fails that document only.
  KEYS[i] celery-task-meta-<id> of document i (variadic)
  ARGV[1] TTL seconds (0 = no expiry), ARGV[1 + i] the document for KEYS[i]
  Returns per document 1 (written), 0 (an earlier SUCCESS kept) or the error message.
  Needs Redis >= 6.2 (SET ... GET).
]]
local ttl = tonumber(ARGV[1])
local out = {}
for i, key in ipairs(KEYS) do
  local doc = ARGV[i + 1]
  local old
  if ttl > 0 then old = redis.pcall('SET', key, doc, 'EX', ttl, 'GET') else old = redis.pcall('SET', key, doc, 'GET') end
  if type(old) == 'table' and old.err then
    out[i] = old.err
  else
    local status
    if old then
      if string.sub(old, 1, 12) == '{"status": "' then
        status = string.match(old, '^{"status": "([^"]*)"')
      else
        local ok, parsed = pcall(cjson.decode, old)
        if ok and type(parsed) == 'table' then status = parsed['status'] end
        -- result_serializer msgpack: a map, read with Redis's built-in cmsgpack; yaml: a top-level status line.
        if not status then
          local okm, m = pcall(cmsgpack.unpack, old)
          if okm and type(m) == 'table' then status = m['status'] end
        end
        if not status then status = string.match(old, '^status: (%u+)') or string.match(old, '\nstatus: (%u+)') end
      end
    end
    if status == 'SUCCESS' then
      if ttl > 0 then redis.call('SET', key, old, 'EX', ttl) else redis.call('SET', key, old) end
      out[i] = 0
    else
      redis.call('PUBLISH', key, doc)
      out[i] = 1
    end
  end
end
return out
