-- Dead-letter a job: store it with its reason, index it by time and write its record
-- (`dead`, or `expired`), then acknowledge and delete the entry, atomically. A stop noted
-- while it was sending ends it `cancelled` or `superseded` instead (nothing stopped becomes
-- a dead letter). Nothing if the entry is no longer this replica's (its new holder decides).
-- An OTP's letter that still keeps its code is indexed by its deadline, for the code to be
-- erased when it passes.
-- KEYS[1] lane stream, KEYS[2] dead letters hash, KEYS[3] lane's dead index, KEYS[4] stats,
-- KEYS[5] the job's record, KEYS[6] dead letters with a code (by deadline), then the token's
-- logs (token.lua)
-- ARGV[1] group, ARGV[2] entry id, ARGV[3] consumer, ARGV[4] job id, ARGV[5] dead letter
-- json, ARGV[6] stats field, ARGV[7] record ttl (s), ARGV[8] the deadline (ms, Unix) of a
-- code still kept, or empty, ARGV[9] the state it ends in ('dead' or 'expired'), ARGV[10]
-- lane, from ARGV[11] the record's fields (count, names and values; see record.lua), then the
-- token
-- Returns {1, ''} dead-lettered, {0, ''} not ours, {2, state} stopped instead, {3, state}
-- refused (the record says it is sent or stopped already; entry finished).
charge()
if not owned(KEYS[1], ARGV[1], ARGV[2], ARGV[3]) then
  return {0, ''}
end
local st = redis.call('HMGET', KEYS[5], 'state', 'stop')
if st[2] then
  take_stop(KEYS[5], ARGV[4], st[2], ARGV[7], KEYS[4], ARGV[10])
  finish(KEYS[1], ARGV[1], ARGV[2])
  return {2, st[2]}
end
if not may('dead_letter', st[1]) then
  finish(KEYS[1], ARGV[1], ARGV[2])
  return {3, st[1]}
end
redis.call('HSET', KEYS[2], ARGV[4], ARGV[5])
redis.call('ZADD', KEYS[3], now_ms(), ARGV[4])
if ARGV[8] ~= '' then
  redis.call('ZADD', KEYS[6], ARGV[8], ARGV[4])
end
record(KEYS[5], 11, ARGV[7])
redis.call('HDEL', KEYS[5], 'entry', 'delayed', 'retry_at', 'supersedes')
follow_claim(KEYS[5], ARGV[4], ARGV[9], ARGV[7])
finish(KEYS[1], ARGV[1], ARGV[2])
redis.call('HINCRBY', KEYS[4], ARGV[6], 1)
return {1, ''}
