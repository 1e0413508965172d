-- Shared by every script: JSON scanning on envelope strings, field extraction, kombu's unacked entry.
-- Time comes from Redis TIME so workers with skewed clocks agree. Envelopes are never re-encoded:
-- flags are edited in place so a kombu-written envelope stays byte-identical.
local SEP = '\6\22'
local function now_parts()
  local t = redis.call('TIME')
  return tonumber(t[1]), tonumber(t[2])
end
local function now_ms()
  local s, us = now_parts()
  return s * 1000 + math.floor(us / 1000)
end
local function now_seconds_text()
  local s, us = now_parts()
  return s .. '.' .. string.format('%06d', us)
end
-- true when s is valid UTF-8 (clients decode replies as UTF-8: any other tag would
-- come back altered and never match its unacked field again)
local function valid_utf8(s)
  if not string.find(s, '[\128-\255]') then return true end
  local i, n = 1, #s
  while i <= n do
    local c = string.byte(s, i)
    local len
    if c < 0x80 then len = 1
    elseif c >= 0xC2 and c <= 0xDF then len = 2
    elseif c >= 0xE0 and c <= 0xEF then len = 3
    elseif c >= 0xF0 and c <= 0xF4 then len = 4
    else return false end
    if i + len - 1 > n then return false end
    for j = i + 1, i + len - 1 do
      local b = string.byte(s, j)
      if b < 0x80 or b > 0xBF then return false end
    end
    if len == 3 then
      local b = string.byte(s, i + 1)
      if (c == 0xE0 and b < 0xA0) or (c == 0xED and b > 0x9F) then return false end
    elseif len == 4 then
      local b = string.byte(s, i + 1)
      if (c == 0xF0 and b < 0x90) or (c == 0xF4 and b > 0x8F) then return false end
    end
    i = i + len
  end
  return true
end
-- the tag of an owned-set member "<lease>SEP<tag>" (members without SEP are bare tags)
local function owned_tag(member)
  local cut = string.find(member, SEP, 1, true)
  if cut then return string.sub(member, cut + #SEP) end
  return member
end
local function skip_ws(s, i)
  return string.find(s, '[^ \t\r\n]', i) or (#s + 1)
end
-- index of the last character of the JSON value starting at i; nil when malformed
local function value_end(s, i)
  local c = string.sub(s, i, i)
  if c == '"' then
    local j = i + 1
    while true do
      local k = string.find(s, '["\\]', j)
      if not k then return nil end
      if string.byte(s, k) == 92 then j = k + 2 else return k end
    end
  elseif c == '{' or c == '[' then
    local depth, j = 0, i
    while true do
      local k = string.find(s, '[%[%]{}"]', j)
      if not k then return nil end
      local ch = string.sub(s, k, k)
      if ch == '"' then
        k = value_end(s, k)
        if not k then return nil end
      elseif ch == '{' or ch == '[' then
        depth = depth + 1
      else
        depth = depth - 1
        if depth == 0 then return k end
      end
      j = k + 1
    end
  elseif c == '' then
    return nil
  end
  local k = string.find(s, '[,}%]%s]', i)
  if not k then return #s end
  return k - 1
end
-- member "name" of the object starting at i: (value start, value end),
-- or (nil, index of the closing brace) when absent, or (nil, nil) when malformed
local function member(s, i, name)
  local j = skip_ws(s, i + 1)
  if string.sub(s, j, j) == '}' then return nil, j end
  while true do
    if string.sub(s, j, j) ~= '"' then return nil, nil end
    local kend = value_end(s, j)
    if not kend then return nil, nil end
    local colon = skip_ws(s, kend + 1)
    if string.sub(s, colon, colon) ~= ':' then return nil, nil end
    local v = skip_ws(s, colon + 1)
    local vend = value_end(s, v)
    if not vend then return nil, nil end
    if string.sub(s, j + 1, kend - 1) == name then return v, vend end
    local n = skip_ws(s, vend + 1)
    local ch = string.sub(s, n, n)
    if ch == '}' then return nil, n end
    if ch ~= ',' then return nil, nil end
    j = skip_ws(s, n + 1)
  end
end
local function object_at(s, i, name)
  local v = member(s, i, name)
  if v and string.sub(s, v, v) == '{' then return v end
  return nil
end
-- s with member "name" of the object at i set to true (appended when absent, like Python dicts)
local function set_true(s, i, name)
  local v, e = member(s, i, name)
  if v then return string.sub(s, 1, v - 1) .. 'true' .. string.sub(s, e + 1) end
  if not e then return s end
  local sep = ', '
  if skip_ws(s, i + 1) == e then sep = '' end
  return string.sub(s, 1, e - 1) .. sep .. '"' .. name .. '": true' .. string.sub(s, e)
end
-- kombu's restore marks: headers.redelivered and properties.delivery_info.redelivered
local function mark_redelivered(env)
  if string.sub(env, 1, 1) ~= '{' then return env end
  local h = object_at(env, 1, 'headers')
  if not h then return env end
  env = set_true(env, h, 'redelivered')
  local p = object_at(env, 1, 'properties')
  if not p then return env end
  local d = object_at(env, p, 'delivery_info')
  if not d then return env end
  return set_true(env, d, 'redelivered')
end
local DI = '"delivery_info": {"exchange": "'
local RK = '", "routing_key": "'
local DT = '"delivery_tag": "'
-- exchange, routing key, tag of an envelope in kombu's own formatting (nil otherwise)
local function quick_fields(p)
  local a = string.find(p, DI, 1, true)
  if not a then return nil end
  local s1 = a + #DI
  local e1 = string.find(p, '"', s1, true)
  if not e1 or string.sub(p, e1, e1 + #RK - 1) ~= RK then return nil end
  local s2 = e1 + #RK
  local e2 = string.find(p, '"', s2, true)
  if not e2 then return nil end
  local t = string.find(p, DT, e2, true)
  if not t then return nil end
  local s3 = t + #DT
  local e3 = string.find(p, '"', s3, true)
  if not e3 then return nil end
  local ex, rk, tag = string.sub(p, s1, e1 - 1), string.sub(p, s2, e2 - 1), string.sub(p, s3, e3 - 1)
  if string.find(ex .. rk .. tag, '\\', 1, true) then return nil end
  return ex, rk, tag
end
-- the same through a full JSON parse; 4th result false when p is not JSON at all
local function slow_fields(p)
  local ok, env = pcall(cjson.decode, p)
  if not ok or type(env) ~= 'table' then return nil, nil, nil, ok end
  local props, ex, rk, tag = env['properties'], nil, nil, nil
  if type(props) == 'table' then
    local info = props['delivery_info']
    if type(info) == 'table' then ex, rk = info['exchange'], info['routing_key'] end
    tag = props['delivery_tag']
  end
  if type(ex) ~= 'string' or type(rk) ~= 'string' then ex, rk = nil, nil end
  if type(tag) ~= 'string' then tag = nil end
  return ex, rk, tag, true
end
local function json_str(s)
  if string.find(s, '[%c"\\/\128-\255]') then return cjson.encode(s) end
  return '"' .. s .. '"'
end
-- kombu's unacked entry: [<envelope>, "<exchange>", "<routing_key>"]; a payload that
-- is not JSON is stored as a JSON string so the entry stays parseable
local function unacked_entry(p, ex, rk, is_json)
  if not is_json then p = cjson.encode(p) end
  return '[' .. p .. ', ' .. json_str(ex) .. ', ' .. json_str(rk) .. ']'
end
