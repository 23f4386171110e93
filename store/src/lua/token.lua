-- Prelude of the scripts that run around a send (begin_send, complete, retry, dead): the
-- budget tokens the requests went out under, each a member of the shared log and of the
-- OTPs' log (see acquire.lua).
-- charge_all(log, otp_log, members): the requests just answered count from now, a time they
-- cannot have reached Interakt after (in flight, an entry was scored at its grant plus the
-- margin), so each leaves the window exactly W after its answer. `XX`: an entry already gone
-- (long expired) is not brought back. One TIME and one ZADD per log for all of them; the
-- score is TIME's microseconds as a number (exact: far below 2^53), never formatted.
-- refund_all(log, otp_log, members): no request was made under these tokens (the jobs were
-- cancelled, settled, taken over or lost meanwhile): their entries leave the logs, and the
-- budget is as if never asked.
-- The scripts of one delivery (retry, dead) take the token as their last argument,
-- `charge:<member>`, with the shared log and the OTPs' log as their last two keys, or empty
-- when the delivery holds no token (then no keys are added), so the script's own keys and
-- arguments keep their places: charge() and refund() act on it.
local function charge_all(log, otp_log, members)
  if #members == 0 then
    return
  end
  local t = redis.call('TIME')
  local answered = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local args = {'XX'}
  for _, member in ipairs(members) do
    args[#args + 1] = answered
    args[#args + 1] = member
  end
  redis.call('ZADD', log, unpack(args))
  redis.call('ZADD', otp_log, unpack(args))
end
local function refund_all(log, otp_log, members)
  if #members == 0 then
    return
  end
  redis.call('ZREM', log, unpack(members))
  redis.call('ZREM', otp_log, unpack(members))
end
local token = ARGV[#ARGV] and string.match(ARGV[#ARGV], '^charge:(.+)$')
local function charge()
  if token then
    charge_all(KEYS[#KEYS - 1], KEYS[#KEYS], {token})
  end
end
local function refund()
  if token then
    refund_all(KEYS[#KEYS - 1], KEYS[#KEYS], {token})
  end
end
