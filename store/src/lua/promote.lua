-- Move retries that are due from the delayed set back onto the lane, atomically per job.
-- KEYS[1] delayed sorted set, KEYS[2] lane stream
-- ARGV[1] most to move, ARGV[2] stream field name
-- Returns {moved, ms until the next one is due (or -1 when none is waiting)}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, job in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', ARGV[2], job)
  redis.call('ZREM', KEYS[1], job)
end
local next = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #next == 0 then
  return {#due, -1}
end
return {#due, math.max(0, tonumber(next[2]) - now)}
