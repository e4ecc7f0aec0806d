-- Takes one unit of stock and records who holds it, atomically.
-- KEYS[1] counter, KEYS[2] reservations (zset: id -> reserved at, ms); same hash tag.
-- ARGV[1] reservation id, ARGV[2] now (ms); a negative now stamps with Redis's clock;
-- ARGV[3] units held back (not released yet by a release plan; 0 when absent).
-- Returns -1 not assembled, 0 sold out, 1 reserved, 2 already held by this id.
local left = redis.call('GET', KEYS[1])
if not left then
  return -1
end
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  return 2
end
if tonumber(left) <= tonumber(ARGV[3] or '0') then
  return 0
end
local now = tonumber(ARGV[2])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
redis.call('DECR', KEYS[1])
redis.call('ZADD', KEYS[2], now, ARGV[1])
return 1
