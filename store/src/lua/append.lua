-- Move a processed event to the stream it belongs in (inbound, or unhandled), then
-- acknowledge and delete it, atomically: exactly one copy even if the processor dies midway.
-- KEYS[1] events stream, KEYS[2] target stream
-- ARGV[1] group, ARGV[2] entry id, ARGV[3] approximate max length of the target (0: none),
-- ARGV[4..] the new entry's field, value pairs
local entry = {}
for i = 4, #ARGV do
  entry[#entry + 1] = ARGV[i]
end
if tonumber(ARGV[3]) > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', unpack(entry))
else
  redis.call('XADD', KEYS[2], '*', unpack(entry))
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
