-- Prelude of the scripts that stop a job before it is sent: cancel_job.lua (by id, or by
-- idempotency key), and enqueue.lua when a newer job supersedes the older one of its replace
-- key. With begin_send.lua it is the one place that decides whether a job may still be sent:
-- both read and write the job's record atomically, so a stop either happens before the send
-- begins (and the send never does) or finds the job `sending`.
--
-- stop(record, id, where, group, at, ttl, step, by)
--   record: the job's record key; id: the job's id;
--   where: `prefix` (the namespace's, `{ns}:`: the job's stream, scheduled set and delayed
--          set are named from it and its record's lane and tenant: tenant.lua),
--          `bodies` (the scheduled jobs' bodies), `stats` (the stats hash);
--   group: the workers' consumer group; at: the stop's time (RFC 3339);
--   ttl: how long a stopped record is kept (s); step: 'cancel' or 'supersede';
--   by: the superseding job's id, or false.
-- Returns 'stopped' when the job is now cancelled or superseded; 'stopping' when its send is
-- under way (the stop is noted: the attempt under way is not retried if it fails); else the
-- state that keeps it (sent, dead, expired, cancelled, superseded), or false when the job
-- has no record.
--
-- Wherever the job waits it is taken out: its scheduled entry and body, its lane entry
-- (acknowledged too, if a replica holds it: that replica's last check then finds it gone
-- and gives its token back), its delayed entry (the record keeps the member: `delayed`).

local function stop(record, id, where, group, at, ttl, step, by)
  local st = redis.call('HMGET', record, 'state', 'lane', 'entry', 'sent_at', 'delayed', 'stop',
    'tenant')
  local state = st[1]
  if not state then
    return false
  end
  if st[4] then
    return 'sent'
  end
  local to = 'cancelled'
  if step == 'supersede' then
    to = 'superseded'
  end
  if state == 'sending' then
    if not st[6] then
      redis.call('HSET', record, 'stop', to, 'cancelled_at', at)
      if by then
        redis.call('HSET', record, 'superseded_by', by)
      end
    end
    return 'stopping'
  end
  if not may(step, state) then
    return state
  end
  local lane = st[2]
  if lane then
    redis.call('ZREM', where.prefix .. 'scheduled:' .. lane, id)
    if st[5] then
      redis.call('ZREM', where.prefix .. 'delayed:' .. lane, st[5])
    end
    if st[3] then
      local stream = stream_of(where.prefix, lane, st[7])
      -- pcall: the group does not exist before the first worker starts.
      redis.pcall('XACK', stream, group, st[3])
      redis.call('XDEL', stream, st[3])
    end
  end
  redis.call('HDEL', where.bodies, id)
  become(record, id, to, ttl)
  redis.call('HSET', record, 'cancelled_at', at)
  if by then
    redis.call('HSET', record, 'superseded_by', by)
  end
  redis.call('HDEL', record, 'entry', 'delayed', 'retry_at')
  redis.call('EXPIRE', record, ttl)
  if st[2] then
    redis.call('HINCRBY', where.stats, 'cancelled:' .. st[2], 1)
  end
  return 'stopped'
end
