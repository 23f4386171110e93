-- Prelude of the scripts that run around a send (begin_send, complete, retry, dead): the
-- budget tokens the requests went out under. A token is written as one argument,
-- `charge:<W in ms>:<logs>:<member>` (`<logs>`: `otp` when it was granted to an OTP, so it
-- is in the OTPs' log too, else `all`), or empty when the delivery holds none; the shared
-- log and the OTPs' log are the script's keys (see acquire.lua).
-- charge_all(log, otp_log, tokens): the requests just answered count from now, a time they
-- cannot have reached Interakt after (in flight, an entry was scored at its grant plus the
-- request timeout plus the margin: see acquire.lua), so each leaves the window exactly W
-- after its answer. Not `XX`: an entry that left its log meanwhile (Redis lost it, or the
-- settle came after the entry's score) is put back, so the request counts for a window
-- from its answer whatever happened in between; each log then lives at least that long
-- (the OTPs' log two windows: acquire.lua reads the window before too). One TIME and one
-- ZADD per log for all of them; the score is TIME's microseconds as a number (exact: far
-- below 2^53), never formatted.
-- refund_all(log, otp_log, tokens): no request was made under these tokens (the jobs were
-- cancelled, settled, taken over or lost meanwhile): their entries leave the logs, and the
-- budget is as if never asked.
-- The scripts of one delivery (retry, dead) take its token as their last argument, with the
-- two logs as their last two keys (none without a token), so the script's own keys and
-- arguments keep their places: charge() and refund() act on it.
local function parse_token(arg)
  local window, logs, member = string.match(arg or '', '^charge:(%d+):(%a+):(.+)$')
  if member then
    return {window = tonumber(window), otp = logs == 'otp', member = member}
  end
end
local function keep_for(key, ms)
  if redis.call('PTTL', key) < ms then
    redis.call('PEXPIRE', key, ms)
  end
end
local function charge_all(log, otp_log, tokens)
  if #tokens == 0 then
    return
  end
  local t = redis.call('TIME')
  local answered = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local all, otps, window, otp_window = {}, {}, 0, 0
  for _, token in ipairs(tokens) do
    all[#all + 1] = answered
    all[#all + 1] = token.member
    window = math.max(window, token.window)
    if token.otp then
      otps[#otps + 1] = answered
      otps[#otps + 1] = token.member
      otp_window = math.max(otp_window, token.window)
    end
  end
  redis.call('ZADD', log, unpack(all))
  keep_for(log, window + 1000)
  if #otps > 0 then
    redis.call('ZADD', otp_log, unpack(otps))
    keep_for(otp_log, 2 * otp_window + 1000)
  end
end
local function refund_all(log, otp_log, tokens)
  if #tokens == 0 then
    return
  end
  local members = {}
  for _, token in ipairs(tokens) do
    members[#members + 1] = token.member
  end
  redis.call('ZREM', log, unpack(members))
  redis.call('ZREM', otp_log, unpack(members))
end
local token = parse_token(ARGV[#ARGV])
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
