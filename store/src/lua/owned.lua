-- Prelude of every script that settles or touches an entry: who holds stream entry `id` in
-- `group` (false when nobody does: acknowledged, deleted, or gone with the group after Redis
-- lost its data), and does `consumer` still own it? Another replica may have taken it over
-- while this one was paused; a settle must then change nothing. Never raises: a missing
-- group is "nobody".
local function holder(stream, group, id)
  local ok, p = pcall(redis.call, 'XPENDING', stream, group, id, id, 1)
  if not ok or #p ~= 1 then
    return false
  end
  return p[1][2]
end
local function owned(stream, group, id, consumer)
  return holder(stream, group, id) == consumer
end
-- The last thing a settle does to its entry: acknowledge and delete it; finish_all does it
-- to several entries of one stream at once.
local function finish_all(stream, group, ids)
  redis.call('XACK', stream, group, unpack(ids))
  redis.call('XDEL', stream, unpack(ids))
end
local function finish(stream, group, id)
  redis.call('XACK', stream, group, id)
  redis.call('XDEL', stream, id)
end
