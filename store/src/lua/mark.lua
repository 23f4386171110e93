-- A delivery event about a sent message: stamp its job's timeline (the first report of a
-- milestone wins) and count it, then acknowledge and delete the event, atomically. An expired
-- timeline is not re-created.
-- KEYS[1] events stream, KEYS[2] job timeline, KEYS[3] stats hash
-- ARGV[1] group, ARGV[2] entry id, ARGV[3] timeline field, ARGV[4] timestamp, ARGV[5] stats field
-- Returns 1 when the milestone is new, 0 when it was known (or the timeline is gone).
local new = 0
if redis.call('EXISTS', KEYS[2]) == 1 and redis.call('HSETNX', KEYS[2], ARGV[3], ARGV[4]) == 1 then
  redis.call('HINCRBY', KEYS[3], ARGV[5], 1)
  new = 1
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return new
