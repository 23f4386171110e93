-- Move scheduled jobs that are due onto their lane, atomically per job, by whichever replica
-- gets there first: a job moved is off the sorted set in the same script, so no other
-- replica moves it again; its record says `queued` with its entry. A job whose record says
-- it is no longer scheduled (stopped by a release that left its entry behind) is dropped.
-- O(log n) per job (ZRANGE by score, ZREM, HGET/HDEL).
-- KEYS[1] the lane's scheduled set (job ids by due time, ms Unix), KEYS[2] the scheduled
-- bodies (hash: id -> job JSON)
-- ARGV[1] most to move, ARGV[2] stream field name, ARGV[3] the namespace's prefix (`{ns}:`:
-- the job's record and its tenant's stream are named from it, in the same hash slot),
-- ARGV[4] the lane, ARGV[5] the workers' group
-- Returns {moved, ms until the next one is due (or -1 when none is waiting)}.
local now = now_ms()
local due = redis.call('ZRANGE', KEYS[1], '-inf', now, 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[1]))
local moved = 0
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[1], id)
  local job = redis.call('HGET', KEYS[2], id)
  if job then
    redis.call('HDEL', KEYS[2], id)
    local record = ARGV[3] .. 'job:' .. id
    local st = redis.call('HMGET', record, 'state', 'tenant')
    local state = st[1]
    if may('schedule', state) then
      local stream = stream_for(ARGV[3], ARGV[4], st[2], ARGV[5])
      local entry = redis.call('XADD', stream, '*', ARGV[2], job)
      arrive(ARGV[3], ARGV[4], st[2])
      if state then
        redis.call('HSET', record, 'state', 'queued', 'entry', entry)
      end
      moved = moved + 1
    end
  end
end
local next = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #next == 0 then
  return {moved, -1}
end
return {moved, math.max(0, tonumber(next[2]) - now)}
