-- An operator unblocks a prefix (`herald-worker guard unblock`, the dashboard): its block is
-- lifted and its counts start afresh (the per-prefix window's and the conversion's), so the
-- next OTP is not blocked again by the counts that blocked it. Its numbers' own counts stay:
-- the per-number rule still holds.
--
-- KEYS[1] the guard's hash of the prefix, KEYS[2] the blocked prefixes
-- ARGV[1] the prefix, ARGV[2] now (ms, Unix)
-- Returns 1 when the prefix was blocked (and now is not), 0 when it was not blocked.
local ends = tonumber(redis.call('HGET', KEYS[1], 'b'))
redis.call('ZREM', KEYS[2], ARGV[1])
if ends == nil or ends <= tonumber(ARGV[2]) then
  return 0
end
redis.call('HDEL', KEYS[1], 'b', 'r', 's')
return 1
