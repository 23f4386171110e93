-- A send succeeded: record it as sent, then acknowledge and delete the entry, atomically,
-- so a redelivered copy finds the record and is not sent again.
-- KEYS[1] lane stream, KEYS[2] sent marker of the job, KEYS[3] stats hash
-- ARGV[1] group, ARGV[2] entry id, ARGV[3] Interakt message id, ARGV[4] marker ttl (s),
-- ARGV[5] stats field
redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[4])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HINCRBY', KEYS[3], ARGV[5], 1)
return 1
