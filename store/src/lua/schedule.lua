-- Move scheduled jobs that are due onto their lane, atomically per job, by whichever replica
-- gets there first: a job moved is off the sorted set in the same script, so no other
-- replica moves it again; its record says `queued` with its entry. A job whose record says
-- it is no longer scheduled (stopped by a release that left its entry behind) is dropped.
-- O(log n) per job (ZRANGE by score, ZREM, HGET/HDEL).
-- KEYS[1] the lane's scheduled set (job ids by due time, ms Unix), KEYS[2] the scheduled
-- bodies (hash: id -> job JSON), KEYS[3] lane stream
-- ARGV[1] most to move, ARGV[2] stream field name, ARGV[3] the prefix of job records
-- (+ id = the job's record, in the same hash slot)
-- Returns {moved, ms until the next one is due (or -1 when none is waiting)}.
local now = now_ms()
local due = redis.call('ZRANGE', KEYS[1], '-inf', now, 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[1]))
local moved = 0
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[1], id)
  local job = redis.call('HGET', KEYS[2], id)
  if job then
    redis.call('HDEL', KEYS[2], id)
    local record = ARGV[3] .. id
    local state = redis.call('HGET', record, 'state')
    if may('schedule', state) then
      local entry = redis.call('XADD', KEYS[3], '*', ARGV[2], job)
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
