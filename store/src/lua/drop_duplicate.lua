-- Acknowledge a redelivered copy of a job that was already sent, without sending it;
-- nothing if the entry is no longer this replica's.
-- KEYS[1] lane stream; ARGV[1] group, ARGV[2] entry id, ARGV[3] consumer
-- Returns 1 when dropped, 0 when the entry was not ours.
if not owned(KEYS[1], ARGV[1], ARGV[2], ARGV[3]) then
  return 0
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
