-- Checks one dashboard session and marks it used now, atomically: a logout (DEL) between
-- the check and the mark cannot be undone by the mark, and every replica sees the same
-- session end at the same moment.
--
-- KEYS[1]  the session's record (Keys::dashboard_session): hash of created, seen (Unix
--          seconds, the dashboard's clock) and token (a keyed fingerprint of the login token)
-- ARGV[1]  now, Unix seconds (the dashboard's clock)
-- ARGV[2]  the idle limit, seconds: a session unused this long is over
-- ARGV[3]  the maximum age, seconds: a session begun this long ago is over, however used
--
-- Returns the record's token fingerprint when the session is alive: it is then marked seen
-- now, and its TTL is what is left of it (the idle limit, or less near its maximum age).
-- Returns false (nil) when there is no such session (never begun, logged out, expired) or it
-- is over: then its record is deleted.
local created, seen, token = unpack(redis.call('HMGET', KEYS[1], 'created', 'seen', 'token'))
if not created or not seen or not token then
  return false
end
local now, idle, max_age = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
created, seen = tonumber(created), tonumber(seen)
if not created or not seen or now - seen >= idle or now - created >= max_age then
  redis.call('DEL', KEYS[1])
  return false
end
redis.call('HSET', KEYS[1], 'seen', ARGV[1])
redis.call('EXPIRE', KEYS[1], math.min(idle, created + max_age - now))
return token
