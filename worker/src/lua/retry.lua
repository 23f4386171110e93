-- Park a job for a retry: into the lane's delayed set, due in ARGV[3] ms (Redis clock),
-- and off the stream, atomically: it is in exactly one of the two.
-- KEYS[1] lane stream, KEYS[2] delayed sorted set, KEYS[3] stats hash
-- ARGV[1] group, ARGV[2] entry id, ARGV[3] delay ms, ARGV[4] job json, ARGV[5] stats field
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[4])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HINCRBY', KEYS[3], ARGV[5], 1)
return 1
