-- Acknowledge a copy of a job that must not be sent from here (already sent, or stopped),
-- without sending it; nothing if the entry is no longer this replica's.
-- KEYS[1] lane stream; ARGV[1] group, ARGV[2] entry id, ARGV[3] consumer
-- Returns 1 when dropped, 0 when the entry was not ours.
if not owned(KEYS[1], ARGV[1], ARGV[2], ARGV[3]) then
  return 0
end
finish(KEYS[1], ARGV[1], ARGV[2])
return 1
