-- Prelude of the scripts that run around a send (begin_send, complete, retry, dead): the
-- budget token the request went out under. The script's last argument is always the token,
-- `charge:<member>`, with the shared log and the OTPs' log as its last two keys, or empty
-- when the delivery holds no token (then no keys are added), so the script's own keys and
-- arguments keep their places.
-- charge(): the request just answered counts from now, a time it cannot have reached
-- Interakt after (in flight, its entry was scored at its grant plus the margin: see
-- acquire.lua), so it leaves the window exactly W after its answer. `XX`: an entry already
-- gone (long expired) is not brought back.
-- refund(): no request was made under the token (the job was cancelled, settled, taken over
-- or lost meanwhile): its entries leave the logs, and the budget is as if never asked.
local token = ARGV[#ARGV] and string.match(ARGV[#ARGV], '^charge:(.+)$')
local function charge()
  if token then
    local t = redis.call('TIME')
    local answered = string.format('%.0f', tonumber(t[1]) * 1000000 + tonumber(t[2]))
    redis.call('ZADD', KEYS[#KEYS - 1], 'XX', answered, token)
    redis.call('ZADD', KEYS[#KEYS], 'XX', answered, token)
  end
end
local function refund()
  if token then
    redis.call('ZREM', KEYS[#KEYS - 1], token)
    redis.call('ZREM', KEYS[#KEYS], token)
  end
end
