-- Move retries that are due from the delayed set back onto the lane, atomically per job: a
-- job moved is off the set in the same script, and its record says `queued` with its new
-- entry. A member whose record says the job is not waiting for a retry any more (cancelled,
-- superseded, sent: a member left by an older release, which kept no `delayed` field) is
-- dropped, never sent.
-- KEYS[1] delayed sorted set
-- ARGV[1] most to move, ARGV[2] stream field name, ARGV[3] the namespace's prefix (`{ns}:`:
-- the job's record and its tenant's stream are named from it), ARGV[4] the lane, ARGV[5]
-- the workers' group
-- Returns {moved, ms until the next one is due (or -1 when none is waiting), dropped}.
local now = now_ms()
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local moved, dropped = 0, 0
for _, job in ipairs(due) do
  redis.call('ZREM', KEYS[1], job)
  -- The envelope's first field is its id.
  local id = string.match(job, '^{"id":"([^"]+)"')
  local record = id and (ARGV[3] .. 'job:' .. id)
  local st = record and redis.call('HMGET', record, 'state', 'tenant') or {}
  local state = st[1]
  if may('promote', state) then
    local stream = stream_for(ARGV[3], ARGV[4], st[2], ARGV[5])
    local entry = redis.call('XADD', stream, '*', ARGV[2], job)
    arrive(ARGV[3], ARGV[4], st[2])
    if state then
      redis.call('HSET', record, 'state', 'queued', 'entry', entry)
      redis.call('HDEL', record, 'delayed', 'retry_at')
    end
    moved = moved + 1
  else
    dropped = dropped + 1
  end
end
local next = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #next == 0 then
  return {moved, -1, dropped}
end
return {moved, math.max(0, tonumber(next[2]) - now), dropped}
