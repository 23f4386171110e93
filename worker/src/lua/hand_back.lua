-- Give a job this replica read but did not start back to the lane, for any replica to take
-- at once (on shutdown), atomically.
-- KEYS[1] lane stream; ARGV[1] group, ARGV[2] entry id, ARGV[3] job json, ARGV[4] field name
redis.call('XADD', KEYS[1], '*', ARGV[4], ARGV[3])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
