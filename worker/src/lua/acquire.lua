-- The shared budget: every replica's requests go through here.
--
-- Three rules, all decided on Redis's clock (TIME), so hosts' clocks never matter:
-- 1. The sliding log: at most E requests in any window of `log window` (W plus a margin),
--    where E is the effective budget (the configured N, halved per 429 episode, grown
--    back by `step` per clean period; see cooldown.lua). Bookings never take the last
--    `reserve` entries of the log, so an OTP finds a token even behind a backlog; while
--    bookings are waiting (KEYS[4] lives), OTPs never take more than E - `share` of it,
--    and bookings may always use their `share`, reserve or not.
-- 2. Global pacing (GCRA): requests from all replicas together are spread one every
--    T = W / E (the "theoretical arrival time" `tat` in KEYS[3]); bookings may run at most
--    `burst` tokens ahead of it, OTPs `burst + reserve` (an OTP never waits behind the
--    bookings' pace), so the window is never spent early, whatever the number of replicas.
-- 3. The cool-down: while KEYS[2] lives (after a 429), nothing is granted.
--
-- KEYS[1] the log (sorted set: one member per admitted request, scored in microseconds)
-- KEYS[2] the cool-down (its TTL is the remaining pause)
-- KEYS[3] the budget's state (hash: configured, effective, changed_at, tat, ...)
-- KEYS[4] "bookings are waiting" (a key with a short TTL)
-- KEYS[5] the OTPs' own log (sorted set, like KEYS[1] but OTPs only)
-- ARGV[1] configured N, ARGV[2] log window (us), ARGV[3] tokens wanted,
-- ARGV[4] unique member prefix for this call, ARGV[5] lane ('otp' or 'booking'),
-- ARGV[6] OTP reserve (tokens), ARGV[7] bookings' share (tokens), ARGV[8] W (us),
-- ARGV[9] burst (tokens), ARGV[10] growth step per clean period (tokens)
-- Returns {granted, wait_us}: granted > 0, or 0 and how long until asking again can help.
-- (`now` and `int` come from clock.lua, in front.)
local N = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local otp = ARGV[5] == 'otp'
local reserve = tonumber(ARGV[6])
local share = tonumber(ARGV[7])
local period = tonumber(ARGV[8])
local burst = tonumber(ARGV[9])
local step = tonumber(ARGV[10])

local cooldown = redis.call('PTTL', KEYS[2])
if cooldown > 0 then
  return {0, cooldown * 1000}
end

-- The effective budget: grown back by `step` for each clean period since the last change.
local st = redis.call('HMGET', KEYS[3], 'effective', 'changed_at', 'tat', 'configured',
  'reserve', 'share')
local eff = math.min(N, tonumber(st[1]) or N)
local changed = tonumber(st[2]) or now
local tat = math.max(tonumber(st[3]) or now, now)
local state_ttl = math.ceil(period / 1000) * 10
if eff < N and now - changed >= period then
  local periods = math.floor((now - changed) / period)
  eff = math.min(N, eff + step * periods)
  changed = now
end
-- Written only when something changed (the hot path reads); `status` reads these fields.
if tonumber(st[1]) ~= eff or tonumber(st[2]) ~= changed or tonumber(st[4]) ~= N
    or tonumber(st[5]) ~= reserve or tonumber(st[6]) ~= share then
  redis.call('HSET', KEYS[3], 'configured', N, 'effective', eff, 'changed_at', int(changed),
    'reserve', reserve, 'share', share)
  redis.call('PEXPIRE', KEYS[3], state_ttl)
end

local bookings_waiting = redis.call('EXISTS', KEYS[4]) == 1
local interval = period / eff
if not otp then
  redis.call('SET', KEYS[4], 1, 'PX', math.max(1000, math.ceil(interval * 4 / 1000)))
end

-- 1. The log. `cap` is how full this lane may make it.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', int(now - window))
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', int(now - window))
local used = redis.call('ZCARD', KEYS[1])
local otp_used = redis.call('ZCARD', KEYS[5])
local cap = eff
if not otp then
  cap = eff - math.min(reserve, eff - 1)
end
local free = cap - used
if otp and bookings_waiting then
  free = math.min(free, (eff - math.min(share, eff - 1)) - otp_used)
elseif not otp then
  free = math.max(free, math.min(share - (used - otp_used), eff - used))
end
if free <= 0 then
  -- Wait for the entry whose leaving brings this lane under its cap.
  local log = KEYS[1]
  local index = math.max(0, used - cap)
  if otp and bookings_waiting and used < cap then
    log = KEYS[5]
    index = 0
  end
  local oldest = redis.call('ZRANGE', log, index, index, 'WITHSCORES')
  if #oldest == 0 then
    return {0, 1000}
  end
  return {0, math.max(1000, tonumber(oldest[2]) + window - now + 1)}
end

-- 2. Pacing: how far ahead of the schedule this lane may run.
local ahead = burst
if otp then
  ahead = burst + reserve
end
local tolerance = (ahead - 1) * interval
local early = tat - now
if early > tolerance then
  return {0, math.max(1000, math.ceil(early - tolerance))}
end
local paced = math.floor((tolerance - early) / interval) + 1
local granted = math.min(want, free, paced)
for i = 1, granted do
  redis.call('ZADD', KEYS[1], int(now), ARGV[4] .. ':' .. i)
  if otp then
    redis.call('ZADD', KEYS[5], int(now), ARGV[4] .. ':' .. i)
  end
end
redis.call('HSET', KEYS[3], 'tat', int(tat + granted * interval))
redis.call('PEXPIRE', KEYS[3], state_ttl)
local ttl = math.ceil(window / 1000) + 1000
redis.call('PEXPIRE', KEYS[1], ttl)
if otp then
  redis.call('PEXPIRE', KEYS[5], ttl)
end
return {granted, 0}
