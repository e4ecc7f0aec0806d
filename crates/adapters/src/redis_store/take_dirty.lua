-- Reads and clears the set of stock keys changed since the last write-back.
-- KEYS[1] dirty set.
local members = redis.call('SMEMBERS', KEYS[1])
redis.call('DEL', KEYS[1])
return members
