-- A job that supersedes one still being sent waits (begin_send.lua answered 6): it goes
-- from its lane to its lane's delayed set, due in ARGV[5] ms, atomically, as a retry would,
-- but without an attempt: it has not been sent. Nothing if the entry is no longer this
-- replica's.
-- KEYS[1] lane stream, KEYS[2] delayed set, KEYS[3] the job's record
-- ARGV[1] group, ARGV[2] entry id, ARGV[3] consumer, ARGV[4] job id, ARGV[5] delay ms,
-- ARGV[6] job json, ARGV[7] the record's ttl (s), ARGV[8] when it is due (RFC 3339)
-- Returns {1, ''} deferred, {0, ''} not ours, {2, state} refused (nothing changed but the
-- entry, finished: the record says the job is not to be sent).
if not owned(KEYS[1], ARGV[1], ARGV[2], ARGV[3]) then
  return {0, ''}
end
local state = redis.call('HGET', KEYS[3], 'state')
if not may('defer', state) then
  finish(KEYS[1], ARGV[1], ARGV[2])
  return {2, state}
end
redis.call('ZADD', KEYS[2], now_ms() + tonumber(ARGV[5]), ARGV[6])
if state then
  redis.call('HSET', KEYS[3], 'delayed', ARGV[6], 'retry_at', ARGV[8])
  redis.call('HDEL', KEYS[3], 'entry')
  become(KEYS[3], ARGV[4], 'retrying', ARGV[7])
end
finish(KEYS[1], ARGV[1], ARGV[2])
return {1, ''}
