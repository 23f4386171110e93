-- Replay a dead letter: off the dead letters and back onto its lane, atomically, so the job
-- is in exactly one of the two whenever the caller is interrupted.
-- KEYS[1] dead letters hash, KEYS[2] the lane's dead index, KEYS[3] lane stream
-- ARGV[1] job id, ARGV[2] the dead letter's JSON as the caller read it,
-- ARGV[3] the job JSON to enqueue (fresh budget, history kept), ARGV[4] stream field name
-- Returns 1 moved, 0 not dead (replayed or purged meanwhile, or never dead),
-- -1 the dead letter changed since it was read (nothing done: read it again).
--
-- Checking only that the id is still dead would make double replays enqueue once, but it
-- could enqueue a stale job: between the caller's read and this script, a concurrent replay
-- may have sent the job back, a worker failed it again and dead-lettered it anew with a
-- longer history; replaying what was read first would drop those attempts (a lost update).
-- Comparing the stored JSON with what was read rules that out for the price of one string
-- comparison.
local stored = redis.call('HGET', KEYS[1], ARGV[1])
if not stored then
  return 0
end
if stored ~= ARGV[2] then
  return -1
end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('XADD', KEYS[3], '*', ARGV[4], ARGV[3])
return 1
