-- Cancel one job by id (`herald-producer cancel`, `DELETE /v1/jobs/{id}`): see cancel.lua.
-- KEYS[1] the job's record, KEYS[2] otp lane, KEYS[3] booking lane, KEYS[4] otp scheduled
-- set, KEYS[5] booking scheduled set, KEYS[6] scheduled bodies, KEYS[7] dead letters,
-- KEYS[8] the job's sent marker, KEYS[9] stats
-- ARGV[1] job id, ARGV[2] group, ARGV[3] now (RFC 3339), ARGV[4] record ttl (s)
-- Returns {0, 'cancelled'} cancelled now, {1, 'cancelled'} already cancelled,
-- {2, state} too late (sending, sent, dead), {3, ''} no such job.
local where = {
  lanes = {otp = KEYS[2], booking = KEYS[3]},
  scheduled = {otp = KEYS[4], booking = KEYS[5]},
  bodies = KEYS[6],
  stats = KEYS[9],
}
local result = cancel(KEYS[1], ARGV[1], where, ARGV[2], ARGV[3], ARGV[4], false)
if result == true then
  return {0, 'cancelled'}
end
if result == 'cancelled' then
  return {1, 'cancelled'}
end
if result then
  return {2, result}
end
-- No record: enqueued before records existed, or long settled.
if redis.call('EXISTS', KEYS[8]) == 1 then
  return {2, 'sent'}
end
if redis.call('HEXISTS', KEYS[7], ARGV[1]) == 1 then
  return {2, 'dead'}
end
return {3, ''}
