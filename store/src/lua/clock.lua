-- Prelude of the budget's scripts: `now` in microseconds, and `int(x)`, a number written
-- whole (microsecond times have 16 digits; Lua's %.14g would round them).
-- `now` is Redis's clock (TIME), the one every replica shares, so hosts' clocks never
-- matter. A test may pass its own clock instead, as the script's last argument
-- `clock:<microseconds>` (a paused tokio clock: see `Clock` in limiter.rs); production
-- never does. The marker keeps the scripts' own arguments where they are.
local now
local given = ARGV[#ARGV] and string.match(ARGV[#ARGV], '^clock:(%d+)$')
if given then
  now = tonumber(given)
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function int(x)
  return string.format('%.0f', x)
end
