-- Park a job for a retry: into the lane's delayed set, due in ARGV[5] ms (Redis clock), and
-- off the stream, atomically: it is in exactly one of the two, and its record says
-- `retrying` and keeps the delayed member (`delayed`), so a cancel can take it out. A stop
-- noted while it was sending (a cancel, a newer job of its replace key) ends it instead:
-- never retried. Nothing if the entry is no longer this replica's (its new holder decides).
-- KEYS[1] lane stream, KEYS[2] delayed sorted set, KEYS[3] stats hash, KEYS[4] the job's
-- record, then the token's logs (token.lua)
-- ARGV[1] group, ARGV[2] entry id, ARGV[3] consumer, ARGV[4] job id, ARGV[5] delay ms,
-- ARGV[6] job json, ARGV[7] stats field, ARGV[8] record ttl (s), ARGV[9] lane, from
-- ARGV[10] the record's fields (count, names and values; see record.lua), then the token
-- Returns {1, ''} parked, {0, ''} not ours, {2, state} stopped instead (cancelled or
-- superseded), {3, state} refused (the record says it is not to be sent; entry finished).
charge()
if not owned(KEYS[1], ARGV[1], ARGV[2], ARGV[3]) then
  return {0, ''}
end
local st = redis.call('HMGET', KEYS[4], 'state', 'stop')
if st[2] then
  take_stop(KEYS[4], ARGV[4], st[2], ARGV[8], KEYS[3], ARGV[9])
  finish(KEYS[1], ARGV[1], ARGV[2])
  return {2, st[2]}
end
if not may('retry', st[1]) then
  finish(KEYS[1], ARGV[1], ARGV[2])
  return {3, st[1]}
end
redis.call('ZADD', KEYS[2], now_ms() + tonumber(ARGV[5]), ARGV[6])
record(KEYS[4], 10, ARGV[8])
redis.call('HSET', KEYS[4], 'delayed', ARGV[6])
redis.call('HDEL', KEYS[4], 'entry')
follow_claim(KEYS[4], ARGV[4], 'retrying', ARGV[8])
finish(KEYS[1], ARGV[1], ARGV[2])
redis.call('HINCRBY', KEYS[3], ARGV[7], 1)
return {1, ''}
