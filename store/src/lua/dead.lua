-- Dead-letter a job: store it with its reason, index it by time and mark its timeline,
-- then acknowledge and delete the entry, atomically. Nothing if the entry is no longer this
-- replica's (its new holder decides).
-- An OTP's letter that still keeps its code is indexed by its deadline, for the code to be
-- erased when it passes.
-- KEYS[1] lane stream, KEYS[2] dead letters hash, KEYS[3] lane's dead index, KEYS[4] stats,
-- KEYS[5] job timeline, KEYS[6] dead letters with a code (by deadline)
-- ARGV[1] group, ARGV[2] entry id, ARGV[3] job id, ARGV[4] dead letter json, ARGV[5] stats field,
-- ARGV[6] timeline ttl (s), ARGV[7] consumer, ARGV[8] the deadline (ms, Unix) of a code still
-- kept, or empty, from ARGV[9] the timeline fields (count, names and values; see
-- timeline.lua), then the charge
-- Returns 1 when dead-lettered, 0 when the entry was not ours.
if not owned(KEYS[1], ARGV[1], ARGV[2], ARGV[7]) then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
redis.call('ZADD', KEYS[3], now, ARGV[3])
if ARGV[8] ~= '' then
  redis.call('ZADD', KEYS[6], ARGV[8], ARGV[3])
end
record(KEYS[5], 9, ARGV[6])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HINCRBY', KEYS[4], ARGV[5], 1)
return 1
