-- Park a job for a retry: into the lane's delayed set, due in ARGV[3] ms (Redis clock),
-- and off the stream, atomically: it is in exactly one of the two. Its timeline records
-- the attempt. Nothing if the entry is no longer this replica's (its new holder decides).
-- KEYS[1] lane stream, KEYS[2] delayed sorted set, KEYS[3] stats hash, KEYS[4] job timeline
-- ARGV[1] group, ARGV[2] entry id, ARGV[3] delay ms, ARGV[4] job json, ARGV[5] stats field,
-- ARGV[6] timeline ttl (s), ARGV[7] consumer, from ARGV[8] the timeline fields (count,
-- names and values; see timeline.lua), then the charge
-- Returns 1 when parked, 0 when the entry was not ours.
if not owned(KEYS[1], ARGV[1], ARGV[2], ARGV[7]) then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[2], string.format('%.0f', now + tonumber(ARGV[3])), ARGV[4])
record(KEYS[4], 8, ARGV[6])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HINCRBY', KEYS[3], ARGV[5], 1)
return 1
