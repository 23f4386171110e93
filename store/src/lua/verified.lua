-- A verification the backend reported (`herald-producer verified`, `POST /v1/otp/verified`):
-- counted for the number's prefix in the conversion's current day (guard.lua), and the flag
-- set that turns the conversion rule on (it applies only once any report was ever seen).
--
-- KEYS[1] the guard's hash of the number's prefix, KEYS[2] the verification reports' flag
-- ARGV[1] now (ms, Unix)
-- Returns the verifications counted for the prefix in its current day.
local now = tonumber(ARGV[1])
local f = redis.call('HMGET', KEYS[1], 'd', 'cs', 'cv', 'ps', 'pv', 'x')
local d, cs, ps = guard_roll(f[1], f[2], f[4], now, GUARD_DAY_MS)
local _, cv, pv = guard_roll(f[1], f[3], f[5], now, GUARD_DAY_MS)
redis.call('HSET', KEYS[1], 'd', d, 'cs', cs, 'cv', cv + 1, 'ps', ps, 'pv', pv)
guard_expire(KEYS[1], tonumber(f[6]), (d + 2) * GUARD_DAY_MS, now)
redis.call('SET', KEYS[2], '1')
return cv + 1
