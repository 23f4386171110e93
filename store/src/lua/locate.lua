-- Where a job is, read in one atomic step (nothing written): its record's state, and which
-- of the keys a job can sit in hold it. For `track --check`-style inspection and for the
-- tests that hold the lifecycle's promise "the record's state matches the key the job sits
-- in" (see Location::check in store/src/calls/inspect.rs).
-- KEYS[1] the job's record, KEYS[2] its lane's stream, KEYS[3] its lane's delayed set,
-- KEYS[4] its lane's scheduled set, KEYS[5] dead letters, KEYS[6] its sent marker
-- ARGV[1] job id
-- Returns {state or '', on its lane, in the delayed set, scheduled, a dead letter, sent}
-- (each 1 or 0).
local st = redis.call('HMGET', KEYS[1], 'state', 'entry', 'delayed')
local on_lane = 0
if st[2] and #redis.call('XRANGE', KEYS[2], st[2], st[2], 'COUNT', 1) > 0 then
  on_lane = 1
end
local delayed = 0
if st[3] and redis.call('ZSCORE', KEYS[3], st[3]) then
  delayed = 1
end
local scheduled = 0
if redis.call('ZSCORE', KEYS[4], ARGV[1]) then
  scheduled = 1
end
return {st[1] or '', on_lane, delayed, scheduled, redis.call('HEXISTS', KEYS[5], ARGV[1]),
  redis.call('EXISTS', KEYS[6])}
