-- A send succeeded: record it as sent (marker, record, message index), then acknowledge and
-- delete the entry, atomically, so a redelivered copy finds the marker and is not sent
-- again, and a webhook about the message finds its job.
-- A send cannot be undone: it is recorded whatever the record said meanwhile, and even when
-- the entry is no longer this replica's (it was taken over while this one was sending; the
-- new holder must find the marker). It is recorded and counted once: a settle that runs
-- again (its answer was lost, Redis failed over) finds the marker and changes nothing but
-- the acknowledgement. Only acknowledging is left to the owner.
-- KEYS[1] lane stream, KEYS[2] sent marker of the job, KEYS[3] stats hash, KEYS[4] the
-- job's record, KEYS[5] message index entry, then the token's logs (token.lua)
-- ARGV[1] group, ARGV[2] entry id, ARGV[3] consumer, ARGV[4] job id, ARGV[5] Interakt
-- message id, ARGV[6] marker and record ttl (s), ARGV[7] stats field, from ARGV[8] the
-- record's fields then the message index fields (each: count, names and values; see
-- record.lua), then the token
-- Returns {1, new} settled, {0, new} recorded but the entry was not ours to acknowledge;
-- new is 1 when this settle recorded the send, 0 when it was recorded before.
charge()
local new = 0
if redis.call('SET', KEYS[2], ARGV[5], 'NX', 'EX', ARGV[6]) then
  new = 1
  local index_at = record(KEYS[4], 8, ARGV[6])
  record(KEYS[5], index_at, ARGV[6])
  redis.call('HDEL', KEYS[4], 'stop', 'entry', 'delayed', 'retry_at', 'supersedes')
  follow_claim(KEYS[4], ARGV[4], 'sent', ARGV[6])
  redis.call('HINCRBY', KEYS[3], ARGV[7], 1)
end
if not owned(KEYS[1], ARGV[1], ARGV[2], ARGV[3]) then
  return {0, new}
end
finish(KEYS[1], ARGV[1], ARGV[2])
return {1, new}
