-- Changes what is left by a campaign's change of the total stock: ARGV[1] units (signed),
-- only when the counter exists and would not go below zero. Open reservations are
-- already out of the counter, so the guard keeps granted + held within the new total.
-- KEYS[1] counter, KEYS[2] reservations (unused; same slot as the other scripts).
-- Returns -1 when the counter is missing, 0 when refused, 1 when changed.
local v = redis.call('GET', KEYS[1])
if not v then
  return -1
end
local n = tonumber(v) + tonumber(ARGV[1])
if n < 0 then
  return 0
end
redis.call('SET', KEYS[1], n)
return 1
