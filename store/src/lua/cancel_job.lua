-- Cancel one job by id (`herald-producer cancel`, `DELETE /v1/jobs/{id}`): see stop.lua.
-- KEYS[1] the job's record, KEYS[2] dead letters, KEYS[3] the job's sent marker, KEYS[4]
-- stats, KEYS[5] scheduled bodies
-- ARGV[1] job id, ARGV[2] group, ARGV[3] now (RFC 3339), ARGV[4] a stopped record's ttl (s),
-- ARGV[5] the namespace's prefix (`{ns}:`)
-- Returns {0, 'cancelled'} cancelled now, {1, state} already stopped (cancelled or
-- superseded: it will never be sent), {2, state} too late (sending: the attempt under way
-- may reach Interakt, and is not retried if it fails; sent, dead, expired), {3, ''} no such
-- job.
local where = {prefix = ARGV[5], bodies = KEYS[5], stats = KEYS[4]}
local result = stop(KEYS[1], ARGV[1], where, ARGV[2], ARGV[3], ARGV[4], 'cancel', false)
if result == 'stopped' then
  return {0, 'cancelled'}
end
if result == 'stopping' then
  return {2, 'sending'}
end
if result == 'cancelled' or result == 'superseded' then
  return {1, result}
end
if result then
  return {2, result}
end
-- No record: enqueued before records existed, or long settled.
if redis.call('EXISTS', KEYS[3]) == 1 then
  return {2, 'sent'}
end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then
  return {2, 'dead'}
end
return {3, ''}
