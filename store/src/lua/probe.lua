-- The cool-down's probe answered, other than 429 (cooldown.lua takes those). A 2xx ends the
-- cool-down for every replica, and the budget grows back from now (sending resumes at the
-- effective budget the episode left); any other answer (5xx, a timeout, a 4xx) says nothing
-- of the key: the next probe goes a probe interval from now. A probe no request went out
-- under (its job was stopped, or its grant went stale) lets the next go at once. Only the
-- probe the state holds counts (one that outlived its flight was replaced by another).
-- KEYS[1] the cool-down, KEYS[2] the budget's state (hash)
-- ARGV[1] the probe's member, ARGV[2] 'ok' (a 2xx), 'failed' or 'unsent', ARGV[3] the
-- probe interval (us)
-- Returns 1 if this answer ended the cool-down, else 0.
-- (`now` and `int` come from clock.lua, in front.)
if redis.call('HGET', KEYS[2], 'probe') ~= ARGV[1] then
  return 0
end
redis.call('HDEL', KEYS[2], 'probe', 'probe_until')
if ARGV[2] == 'ok' then
  redis.call('HDEL', KEYS[2], 'probe_at')
  redis.call('HSET', KEYS[2], 'changed_at', int(now))
  return redis.call('DEL', KEYS[1])
end
if ARGV[2] == 'failed' then
  redis.call('HSET', KEYS[2], 'probe_at', int(now + tonumber(ARGV[3])))
end
return 0
