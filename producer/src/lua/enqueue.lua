-- Enqueue one job under an idempotency key, atomically: the key is claimed and the job
-- appended to its lane together, or (when the key is already claimed) nothing is written.
-- KEYS[1] the idempotency key's claim, KEYS[2] the lane stream
-- ARGV[1] the job's id, ARGV[2] the key's window in ms, ARGV[3] the job's JSON,
-- ARGV[4] the stream field name
-- Returns {1, first job id} for a duplicate, {0, stream entry id} for a new entry.
local first = redis.call('GET', KEYS[1])
if first then
  return {1, first}
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {0, redis.call('XADD', KEYS[2], '*', ARGV[4], ARGV[3])}
