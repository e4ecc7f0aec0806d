-- Deletes the lock only if it still holds our token (it may have expired and been
-- taken by someone else). KEYS[1] lock; ARGV[1] token. Returns 1 when released.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
