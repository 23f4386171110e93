-- A verification the backend reported (`herald-producer verified`, `POST /v1/otp/verified`):
-- counted for the number's prefix in the conversion's current day (guard.lua), and the flag
-- set that turns the conversion rule on (it applies only once any report was ever seen).
--
-- KEYS[1] the guard's hash of the number's prefix, KEYS[2] the verification reports' flag
-- ARGV[1] now (ms, Unix)
-- Returns the verifications counted for the prefix in its current day.
local now = tonumber(ARGV[1])
local f = redis.call('HMGET', KEYS[1], 's', 'x')
local counts = guard_counts(f[1])
local d, cs, ps = guard_roll(counts[4], counts[5], counts[7], now, GUARD_DAY_MS)
local _, cv, pv = guard_roll(counts[4], counts[6], counts[8], now, GUARD_DAY_MS)
-- The per-prefix window's counts are kept as they are (none yet: an empty window).
guard_write(KEYS[1], {'s', string.format('%d %d %d %d %d %d %d %d %d', counts[1] or 0,
  counts[2] or 0, counts[3] or 0, d, cs, cv + 1, ps, pv, counts[9] or 0)}, tonumber(f[2]),
  (d + 2) * GUARD_DAY_MS, now)
redis.call('SET', KEYS[2], '1')
return cv + 1
