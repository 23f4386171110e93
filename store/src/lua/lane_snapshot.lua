-- A lane's length, and its workers' group's pending count and lag, read at one instant
-- (nothing written): what was read and not settled, and what no replica has read yet.
-- KEYS[1] lane stream; ARGV[1] the workers' group
-- Returns {length, pending, lag}: pending is -1 before the group exists, lag -1 when Redis
-- cannot tell it (entries deleted out of order).
local len = redis.call('XLEN', KEYS[1])
local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', KEYS[1])
if not ok then
  return {len, -1, -1}
end
for _, group in ipairs(groups) do
  local fields = {}
  for i = 1, #group, 2 do
    fields[group[i]] = group[i + 1]
  end
  if fields['name'] == ARGV[1] then
    local lag = fields['lag']
    if not lag then
      lag = -1
    end
    return {len, fields['pending'], lag}
  end
end
return {len, -1, -1}
