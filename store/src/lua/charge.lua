-- Prelude of the settle scripts that follow a send (complete, retry, dead): the request
-- just answered is charged to the shared budget's log from now, a time it cannot have
-- reached Interakt after (see acquire.lua: in flight, its entry was scored at its grant plus
-- the margin). It then leaves the window exactly W after its answer.
-- The script's last argument is always the charge: `charge:<member>`, with the log and the
-- OTPs' log as its last two keys, or empty when the delivery holds no token (then no keys
-- are added), so the script's own keys and arguments keep their places. `XX`: an entry
-- already gone (long expired) is not brought back.
local charged = ARGV[#ARGV] and string.match(ARGV[#ARGV], '^charge:(.+)$')
if charged then
  local t = redis.call('TIME')
  local answered = string.format('%.0f', tonumber(t[1]) * 1000000 + tonumber(t[2]))
  redis.call('ZADD', KEYS[#KEYS - 1], 'XX', answered, charged)
  redis.call('ZADD', KEYS[#KEYS], 'XX', answered, charged)
end
