-- Take over entries of one lane that have sat unacknowledged for `min idle`: their replica
-- died, hung or was paused (a live one keeps its holds alive). Visits the default tenant's
-- stream, then the other tenants' streams from `cursor` (an SSCAN cursor over the lane's
-- streams set), a page per call; a tenant's stream left empty (every job settled) is
-- removed with its group, and listed again by its next job (tenant.lua).
-- KEYS[1] the lane's streams set
-- ARGV[1] the namespace's prefix, ARGV[2] the lane, ARGV[3] the workers' group, ARGV[4] the
-- consumer, ARGV[5] min idle (ms), ARGV[6] how many at most, ARGV[7] cursor ('0' to start,
-- which visits the default tenant's stream first)
-- Returns {next cursor ('0': done), tenant, entry id, fields, deliveries, ...}.
local prefix, lane, group, consumer = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local left = tonumber(ARGV[6])
local out = {'0'}
local function claim(tenant)
  local stream = stream_of(prefix, lane, tenant)
  local ok, reply = pcall(redis.call, 'XAUTOCLAIM', stream, group, consumer, ARGV[5], '0-0',
    'COUNT', math.max(left, 1))
  if ok then
    for _, entry in ipairs(reply[2]) do
      if left <= 0 then
        break
      end
      local p = redis.call('XPENDING', stream, group, entry[1], entry[1], 1)
      out[#out + 1] = tenant
      out[#out + 1] = entry[1]
      out[#out + 1] = entry[2]
      out[#out + 1] = (p[1] and p[1][4]) or 1
      left = left - 1
    end
  end
  if tenant ~= 'default' and redis.call('XLEN', stream) == 0 then
    redis.call('DEL', stream)
    redis.call('SREM', KEYS[1], tenant)
    redis.call('ZREM', prefix .. 'lane:' .. lane .. ':turns', tenant)
  end
end
if ARGV[7] == '0' then
  claim('default')
end
local page = redis.call('SSCAN', KEYS[1], ARGV[7], 'COUNT', 100)
out[1] = page[1]
for _, tenant in ipairs(page[2]) do
  if left <= 0 then
    -- Not visited: the next call starts from this page again.
    out[1] = ARGV[7]
    break
  end
  claim(tenant)
end
return out
