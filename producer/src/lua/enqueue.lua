-- Enqueue one job under an idempotency key, atomically: the key is claimed and the job
-- appended to its lane together, or (when the key is already claimed) nothing is written.
-- The claim holds "<first job id>:<content fingerprint>", so a later job under the same key
-- is told apart: the same content is a duplicate, other content a conflict. A claim in the
-- old format (the first job's id alone, no ':') has no fingerprint and counts as the same
-- content: a duplicate, as it always was.
-- KEYS[1] the idempotency key's claim, KEYS[2] the lane stream,
-- KEYS[3] (bookings only) the booking's index of job ids
-- ARGV[1] the job's id, ARGV[2] the key's window in ms, ARGV[3] the job's JSON,
-- ARGV[4] the stream field name, ARGV[5] the job's content fingerprint (hex),
-- ARGV[6] (with KEYS[3]) how long the booking index is kept, in seconds
-- Returns {0, stream entry id} for a new entry, {1, first job id} for a duplicate,
-- {2, first job id} for a conflict (the key holds other content; nothing written).
local held = redis.call('GET', KEYS[1])
if held then
  local sep = string.find(held, ':', 1, true)
  if not sep then
    return {1, held}
  end
  local first = string.sub(held, 1, sep - 1)
  if string.sub(held, sep + 1) == ARGV[5] then
    return {1, first}
  end
  return {2, first}
end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. ARGV[5], 'PX', ARGV[2])
if KEYS[3] then
  redis.call('SADD', KEYS[3], ARGV[1])
  redis.call('EXPIRE', KEYS[3], ARGV[6])
end
return {0, redis.call('XADD', KEYS[2], '*', ARGV[4], ARGV[3])}
