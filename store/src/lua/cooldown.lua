-- After a 429: pause every replica, and treat the key's limit as lower than configured.
--
-- All 429s within one period W are one *episode*: only the first of an episode halves the
-- effective budget (never below 1) and lengthens the escalation; the rest of its burst only
-- makes sure the pause is in force. Without Retry-After the pause is `base` doubled per
-- recent episode; with it, Retry-After. Either way at most `max` (--max-cooldown: the
-- caller has already clamped Retry-After). Extends a pause in force, never shortens it.
-- The budget grows back in acquire.lua, one step per clean period.
-- The probes: the next may go a probe interval after this 429 (acquire.lua grants it while
-- the pause lasts longer). A probe's own 429 ends its flight and keeps the pause (extended
-- as any 429's), but begins no episode: it only says the key is still full.
-- KEYS[1] cool-down key, KEYS[2] the budget's state (hash)
-- ARGV[1] Retry-After in ms (or -1), ARGV[2] base ms, ARGV[3] max ms, ARGV[4] W (us),
-- ARGV[5] configured N, ARGV[6] the probe interval (us), ARGV[7] the probe's member when
-- this 429 answered the cool-down's probe, else ''
-- Returns {pause in force (ms), effective budget, 1 if this 429 began an episode else 0}.
-- (`now` and `int` come from clock.lua, in front.)
local period = tonumber(ARGV[4])
local N = tonumber(ARGV[5])
local probe_interval = tonumber(ARGV[6])
local probe = ARGV[7]

local st = redis.call('HMGET', KEYS[2], 'effective', 'episode_until', 'streak', 'probe')
local eff = math.min(N, tonumber(st[1]) or N)
local episode_until = tonumber(st[2]) or 0
local streak = tonumber(st[3]) or 0
local began = 0
if probe == '' and now >= episode_until then
  -- A long clean stretch forgets earlier episodes.
  if now - episode_until > 2 * period then
    streak = 0
  end
  streak = streak + 1
  eff = math.max(1, math.floor(eff / 2))
  episode_until = now + period
  began = 1
  redis.call('HSET', KEYS[2], 'configured', N, 'effective', eff, 'changed_at', int(now),
    'episode_until', int(episode_until), 'streak', streak)
  redis.call('PEXPIRE', KEYS[2], math.ceil(period / 1000) * 10)
end
if probe ~= '' and st[4] == probe then
  redis.call('HDEL', KEYS[2], 'probe', 'probe_until')
end

local pause = tonumber(ARGV[1])
if pause < 0 then
  pause = tonumber(ARGV[2]) * 2 ^ math.min(math.max(streak, 1) - 1, 20)
end
pause = math.floor(math.min(pause, tonumber(ARGV[3])))
local in_force = redis.call('PTTL', KEYS[1])
if in_force < pause then
  if pause > 0 then
    redis.call('SET', KEYS[1], streak, 'PX', pause)
  end
  in_force = pause
end
if in_force > 0 then
  redis.call('HSET', KEYS[2], 'probe_at', int(now + probe_interval))
  local keep = math.ceil(period / 1000) * 10 + in_force
  if redis.call('PTTL', KEYS[2]) < keep then
    redis.call('PEXPIRE', KEYS[2], keep)
  end
end
return {in_force, eff, began}
