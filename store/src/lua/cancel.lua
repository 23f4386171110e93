-- Prelude of the scripts that cancel a job (cancel_job.lua, and enqueue.lua when a newer job
-- supersedes an older one). With the worker's begin_send.lua it is the one place that
-- decides whether a job may still be sent: both read and write the job's record (its
-- `state` field) atomically, so a cancel either happens before the send begins (and the
-- send never does) or finds the job `sending` (and changes nothing).
--
-- cancel(record, id, where, group, at, ttl, by)
--   record: the job's record key; id: the job's id;
--   where: {lanes = {otp = stream, booking = stream}, scheduled = {otp = zset, booking = zset},
--           bodies = the scheduled jobs' bodies (hash), stats = the stats hash};
--   group: the workers' consumer group; at: the cancel's time (RFC 3339);
--   ttl: how long the record is kept (s); by: the superseding job's id, or false.
-- Returns true when cancelled now; else the recorded state that stops it ('sending', 'sent',
-- 'dead', 'cancelled'), or false when the job has no record.
--
-- Wherever the job waits it is taken out: its scheduled entry and body, its lane entry
-- (acknowledged too, if a replica holds it). A job parked for a retry stays in its delayed
-- set (its member is its whole JSON) and is dropped by begin_send.lua when it comes due.
local function cancel(record, id, where, group, at, ttl, by)
  local st = redis.call('HMGET', record, 'state', 'lane', 'entry', 'sent_at')
  local state = st[1]
  if not state then
    return false
  end
  if st[4] then
    return 'sent'
  end
  if state ~= 'scheduled' and state ~= 'queued' and state ~= 'retrying' then
    return state
  end
  local lane = st[2]
  if lane and where.scheduled[lane] then
    redis.call('ZREM', where.scheduled[lane], id)
  end
  redis.call('HDEL', where.bodies, id)
  if st[3] and lane and where.lanes[lane] then
    -- pcall: the group does not exist before the first worker starts.
    redis.pcall('XACK', where.lanes[lane], group, st[3])
    redis.call('XDEL', where.lanes[lane], st[3])
  end
  redis.call('HSET', record, 'state', 'cancelled', 'cancelled_at', at)
  redis.call('HDEL', record, 'entry')
  if by then
    redis.call('HSET', record, 'superseded_by', by)
  end
  redis.call('EXPIRE', record, ttl)
  if lane then
    redis.call('HINCRBY', where.stats, 'cancelled:' .. lane, 1)
  end
  return true
end
