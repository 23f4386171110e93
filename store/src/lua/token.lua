-- Prelude of the scripts that run around a send (begin_send, complete, retry, dead): the
-- budget token the request went out under. The script's last argument is always the token,
-- `charge:<W in ms>:<logs>:<member>` (`<logs>`: `otp` when it was granted to an OTP, so it
-- is in the OTPs' log too, else `all`), with the shared log and the OTPs' log as its last
-- two keys, or empty when the delivery holds no token (then no keys are added), so the
-- script's own keys and arguments keep their places.
-- charge(): the request just answered counts from now, a time it cannot have reached
-- Interakt after (in flight, its entry was scored at its grant plus the request timeout
-- plus the margin: see acquire.lua), so it leaves the window exactly W after its answer.
-- Not `XX`: an entry that left its log meanwhile (Redis lost it, or the settle came after
-- the entry's score) is put back, so the request counts for a window from its answer
-- whatever happened in between; each log then lives at least that long (the OTPs' log two
-- windows: acquire.lua reads the window before too).
-- refund(): no request was made under the token (the job was cancelled, settled, taken over
-- or lost meanwhile): its entries leave the logs, and the budget is as if never asked.
local token_window, token_logs, token = string.match(ARGV[#ARGV] or '',
  '^charge:(%d+):(%a+):(.+)$')
local function keep_for(key, ms)
  if redis.call('PTTL', key) < ms then
    redis.call('PEXPIRE', key, ms)
  end
end
local function charge()
  if token then
    local t = redis.call('TIME')
    local answered = string.format('%.0f', tonumber(t[1]) * 1000000 + tonumber(t[2]))
    local window = tonumber(token_window)
    redis.call('ZADD', KEYS[#KEYS - 1], answered, token)
    keep_for(KEYS[#KEYS - 1], window + 1000)
    if token_logs == 'otp' then
      redis.call('ZADD', KEYS[#KEYS], answered, token)
      keep_for(KEYS[#KEYS], 2 * window + 1000)
    end
  end
end
local function refund()
  if token then
    redis.call('ZREM', KEYS[#KEYS - 1], token)
    redis.call('ZREM', KEYS[#KEYS], token)
  end
end
