-- After a 429: pause every replica. Extends the pause, never shortens it.
-- KEYS[1] cool-down key, KEYS[2] recent-429 counter
-- ARGV[1] Retry-After in ms (or -1), ARGV[2] base ms, ARGV[3] max ms, ARGV[4] counter ttl ms
-- Returns the pause now in force, in ms.
local streak = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
local pause = tonumber(ARGV[1])
if pause < 0 then
  pause = math.min(tonumber(ARGV[3]), tonumber(ARGV[2]) * 2 ^ math.min(streak - 1, 20))
end
pause = math.floor(pause)
local current = redis.call('PTTL', KEYS[1])
if current < pause then
  redis.call('SET', KEYS[1], streak, 'PX', pause)
  return pause
end
return current
