-- Prelude of every script that settles or touches an entry: does `consumer` still own
-- stream entry `id` in `group`? (Another replica may have taken it over while this one was
-- paused; the settle must then change nothing.)
local function owned(stream, group, id, consumer)
  local p = redis.call('XPENDING', stream, group, id, id, 1)
  return #p == 1 and p[1][2] == consumer
end
