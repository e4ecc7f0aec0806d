-- Counts one more rate-limit rejection of a user and restarts its window.
-- KEYS[1] the user's entry (hash: count, expires in ms of the caller's clock).
-- ARGV[1] now (ms), ARGV[2] window (ms). Returns the new count.
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local count = tonumber(redis.call('HGET', KEYS[1], 'count') or '0')
local expires = tonumber(redis.call('HGET', KEYS[1], 'expires') or '0')
if expires <= now then
  count = 0
end
count = count + 1
redis.call('HSET', KEYS[1], 'count', count, 'expires', now + window)
redis.call('PEXPIRE', KEYS[1], window)
return count
