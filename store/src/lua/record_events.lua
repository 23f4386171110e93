-- Record webhook events: each one not seen before is marked seen and appended to the events
-- stream, atomically, so a request Interakt retries after a Redis blip (or a duplicate
-- delivery) never records an event twice.
-- KEYS[1] events stream, KEYS[2..] each event's seen marker
-- ARGV[1] marker ttl (s), ARGV[2] stream field name, ARGV[3..] each event's json
-- Returns one 1 (recorded) or 0 (duplicate) per event, in order.
local out = {}
for i = 2, #KEYS do
  if redis.call('SET', KEYS[i], '1', 'NX', 'EX', ARGV[1]) then
    redis.call('XADD', KEYS[1], '*', ARGV[2], ARGV[i + 1])
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
