-- Give a job this replica read but did not start back to the lane, for any replica to take
-- at once (on shutdown), atomically; nothing if the entry is no longer this replica's.
-- KEYS[1] lane stream; ARGV[1] group, ARGV[2] entry id, ARGV[3] job json, ARGV[4] field name,
-- ARGV[5] consumer
-- Returns 1 when handed back, 0 when the entry was not ours.
if not owned(KEYS[1], ARGV[1], ARGV[2], ARGV[5]) then
  return 0
end
redis.call('XADD', KEYS[1], '*', ARGV[4], ARGV[3])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
