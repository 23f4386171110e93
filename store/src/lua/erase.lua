-- Erase an OTP's code from its dead letter once its deadline has passed: replace the letter
-- with the erased one only if it is still exactly what was read (a replay or a new death in
-- between wins), and take it off the index either way.
-- KEYS[1] dead letters hash, KEYS[2] dead letters with a code (by deadline)
-- ARGV[1] job id, ARGV[2] the letter as read, ARGV[3] the letter with its code erased, or
-- empty when there was nothing to erase (another replica's eraser got there first, or the
-- letter is gone or is not an OTP's): then only the index entry goes, and the letter stays.
-- Returns 1 when erased, 0 when the letter had changed, was gone or had nothing to erase.
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[3] == '' or redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
