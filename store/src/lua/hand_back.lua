-- Give a job this replica read but did not send back to its lane, for any replica to take at
-- once (on shutdown; after its grant kept going stale), atomically: a new entry, the record
-- `queued` with it, the old entry finished. A stop noted meanwhile ends it instead. Nothing
-- if the entry is no longer this replica's.
-- KEYS[1] the job's stream (its lane's, its tenant's), KEYS[2] the job's record, KEYS[3]
-- stats
-- ARGV[1] group, ARGV[2] entry id, ARGV[3] consumer, ARGV[4] job id, ARGV[5] job json,
-- ARGV[6] field name, ARGV[7] record ttl (s), ARGV[8] lane, ARGV[9] the namespace's prefix,
-- ARGV[10] the job's tenant
-- Returns {1, ''} handed back, {0, ''} not ours, {2, state} stopped instead, {3, state}
-- refused (the record says it is not to be sent; entry finished).
if not owned(KEYS[1], ARGV[1], ARGV[2], ARGV[3]) then
  return {0, ''}
end
local st = redis.call('HMGET', KEYS[2], 'state', 'stop')
if st[2] then
  take_stop(KEYS[2], ARGV[4], st[2], ARGV[7], KEYS[3], ARGV[8])
  finish(KEYS[1], ARGV[1], ARGV[2])
  return {2, st[2]}
end
if not may('hand_back', st[1]) then
  finish(KEYS[1], ARGV[1], ARGV[2])
  return {3, st[1]}
end
local entry = redis.call('XADD', KEYS[1], '*', ARGV[6], ARGV[5])
arrive(ARGV[9], ARGV[8], ARGV[10])
if st[1] then
  redis.call('HSET', KEYS[2], 'state', 'queued', 'entry', entry)
end
finish(KEYS[1], ARGV[1], ARGV[2])
return {1, ''}
