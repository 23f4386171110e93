-- Replay a dead letter: off the dead letters and back onto its lane, atomically, so the job
-- is in exactly one of the two whenever the caller is interrupted; its record says `queued`
-- with its entry (cancellable again) and its idempotency key holds it again.
-- A letter whose replace key now names a newer job, or whose idempotency key now holds
-- another job, is skipped: sending it would put a stale message after a newer one.
-- KEYS[1] dead letters hash, KEYS[2] the lane's dead index, KEYS[3] the job's stream (its
-- lane's, its tenant's), KEYS[4]
-- the job's record, KEYS[5] dead letters with a code, KEYS[6] the job's replace key (the
-- record when none), KEYS[7] the job's idempotency claim (the record when none)
-- ARGV[1] job id, ARGV[2] the dead letter's JSON as the caller read it, ARGV[3] the job JSON
-- to enqueue (fresh budget, history kept), ARGV[4] stream field name, ARGV[5] '1' with a
-- replace key, ARGV[6] the claim's value ('<id>:<fingerprint>') or '' without a key,
-- ARGV[7] the key's window (ms) when the record keeps none, ARGV[8] the record's ttl (s),
-- ARGV[9] the namespace's prefix, ARGV[10] the lane, ARGV[11] the tenant, ARGV[12] the
-- workers' group, from ARGV[13] the record's fields (count, names and values; see
-- record.lua)
-- Returns {1, entry} moved, {0, ''} not dead (replayed or purged meanwhile, or never
-- dead), {-1, ''} the dead letter changed since it was read (nothing done: read it again),
-- {2, newer job id} skipped: its replace key names a newer job, {3, other job id} skipped:
-- its idempotency key holds another job, {4, state} refused: its record says it is not
-- dead (nothing done).
--
-- Checking only that the id is still dead would make double replays enqueue once, but it
-- could enqueue a stale job: between the caller's read and this script, a concurrent replay
-- may have sent the job back, a worker failed it again and dead-lettered it anew with a
-- longer history; replaying what was read first would drop those attempts (a lost update).
-- Comparing the stored JSON with what was read rules that out for the price of one string
-- comparison.
local stored = redis.call('HGET', KEYS[1], ARGV[1])
if not stored then
  return {0, ''}
end
if stored ~= ARGV[2] then
  return {-1, ''}
end
local state = redis.call('HGET', KEYS[4], 'state')
if not may('replay', state) then
  return {4, state}
end
if ARGV[5] == '1' then
  local newest = redis.call('GET', KEYS[6])
  if newest and newest ~= ARGV[1] then
    return {2, newest}
  end
end
if ARGV[6] ~= '' then
  local held = redis.call('GET', KEYS[7])
  if held and held ~= ARGV[1] and string.sub(held, 1, #ARGV[1] + 1) ~= ARGV[1] .. ':' then
    local sep = string.find(held, ':', 1, true)
    return {3, sep and string.sub(held, 1, sep - 1) or held}
  end
  local window = tonumber(redis.call('HGET', KEYS[4], 'claim_ms')) or tonumber(ARGV[7])
  redis.call('SET', KEYS[7], ARGV[6], 'PX', math.max(window, tonumber(ARGV[8]) * 1000))
  redis.call('HSET', KEYS[4], 'claim_ms', window)
end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
stream_for(ARGV[9], ARGV[10], ARGV[11], ARGV[12])
local entry = redis.call('XADD', KEYS[3], '*', ARGV[4], ARGV[3])
arrive(ARGV[9], ARGV[10], ARGV[11])
record(KEYS[4], 13, ARGV[8])
redis.call('HSET', KEYS[4], 'entry', entry)
redis.call('HDEL', KEYS[4], 'stop', 'delayed', 'retry_at', 'supersedes')
return {1, entry}
