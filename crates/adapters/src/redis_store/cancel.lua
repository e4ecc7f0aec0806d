-- Gives a reserved unit back, once: only when the reservation is still recorded.
-- KEYS[1] counter, KEYS[2] reservations; ARGV[1] reservation id.
-- Returns 1 when the unit went back, 0 when there was nothing to return (already
-- confirmed, cancelled, or the counter was reset by an operator).
if redis.call('ZREM', KEYS[2], ARGV[1]) == 0 then
  return 0
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('INCR', KEYS[1])
return 1
