-- A send succeeded: record it as sent (marker, timeline, message index), then acknowledge
-- and delete the entry, atomically, so a redelivered copy finds the record and is not sent
-- again, and a webhook about the message finds its job.
-- The record is written even when the entry is no longer this replica's (it was taken over
-- while this one was sending): the send happened, and the new holder must find the marker
-- and not send it again. Only acknowledging is left to the owner.
-- KEYS[1] lane stream, KEYS[2] sent marker of the job, KEYS[3] stats hash,
-- KEYS[4] job timeline, KEYS[5] message index entry
-- ARGV[1] group, ARGV[2] entry id, ARGV[3] Interakt message id, ARGV[4] marker ttl (s),
-- ARGV[5] stats field, ARGV[6] consumer, from ARGV[7] the timeline fields then the message
-- index fields (each: count, names and values; see timeline.lua), then the charge
-- Returns 1 when settled, 0 when recorded but the entry was not ours to acknowledge.
redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[4])
local index_at = record(KEYS[4], 7, ARGV[4])
record(KEYS[5], index_at, ARGV[4])
redis.call('HINCRBY', KEYS[3], ARGV[5], 1)
if not owned(KEYS[1], ARGV[1], ARGV[2], ARGV[6]) then
  return 0
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
