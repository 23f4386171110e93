-- Shared rate limit: an exact sliding log of admitted requests, timed by Redis TIME.
-- KEYS[1] window (sorted set: one member per admitted request, scored in microseconds)
-- KEYS[2] cool-down (a key whose TTL is the remaining pause after a 429)
-- ARGV[1] limit N, ARGV[2] window length in microseconds, ARGV[3] tokens wanted,
-- ARGV[4] unique member prefix for this call
-- Returns {granted, wait_us}: granted > 0, or 0 and how long until a slot frees up.
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

local cooldown = redis.call('PTTL', KEYS[2])
if cooldown > 0 then
  return {0, cooldown * 1000}
end

-- A request admitted at s occupies (s, s + window]; drop those whose time has passed.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local free = limit - redis.call('ZCARD', KEYS[1])
if free <= 0 then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, math.max(1, tonumber(oldest[2]) + window - now + 1)}
end

local granted = math.min(free, want)
for i = 1, granted do
  redis.call('ZADD', KEYS[1], now, ARGV[4] .. ':' .. i)
end
redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
return {granted, 0}
