-- Prelude of the budget's scripts: `now`, Redis's clock in microseconds, and `int(x)`, a
-- number written whole (microsecond times have 16 digits; Lua's %.14g would round them).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local function int(x)
  return string.format('%.0f', x)
end
