-- The backlog of every lane, tenant by tenant, read at one instant (nothing written): what
-- `status` shows and the workers' queue gauges report. A lane is its own stream (the default
-- tenant's) and one stream per other tenant with jobs (tenant.lua); settled entries are
-- deleted, so a stream's length less its pending count is what no replica has read yet
-- (`ready`), and entries are read in order, so the first entry after the newest pending one
-- is the oldest ready job.
-- KEYS[1] the namespace's stats hash (routes the call to the namespace's slot)
-- ARGV[1] the namespace's prefix, ARGV[2] the workers' group, ARGV[3] how many tenants to
-- list (largest ready first), from ARGV[4] the lanes
-- Returns {lanes, consumers, tenants}, each flat:
--   lanes: lane, ready, pending, ms since the oldest ready job was added (0: none), ms
--   since the oldest unsettled one was (ready or pending; 0: none), ... per lane;
--   consumers: name, entries pending with it, ... over every stream;
--   tenants: tenant, lane, ready, ms since its oldest ready job was added, ... (the
--   largest `ready` first, ties by tenant then lane).
local prefix, group, top = ARGV[1], ARGV[2], tonumber(ARGV[3])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

local function age(entries)
  if #entries == 0 then
    return 0
  end
  local ms = tonumber(string.match(entries[1][1], '^(%d+)'))
  return math.max(0, now - ms)
end

local lanes, in_hand, tenants = {}, {}, {}
for i = 4, #ARGV do
  local lane = ARGV[i]
  local names = redis.call('SMEMBERS', prefix .. 'lane:' .. lane .. ':streams')
  table.insert(names, 1, 'default')
  local ready, pending, oldest_ready, oldest = 0, 0, 0, 0
  for _, tenant in ipairs(names) do
    local stream = stream_of(prefix, lane, tenant)
    local len = redis.call('XLEN', stream)
    if len > 0 then
      local held, newest_held = 0, nil
      local ok, summary = pcall(redis.call, 'XPENDING', stream, group)
      if ok then
        held = tonumber(summary[1])
        if held > 0 then
          newest_held = summary[3]
          for _, consumer in ipairs(summary[4]) do
            in_hand[consumer[1]] = (in_hand[consumer[1]] or 0) + tonumber(consumer[2])
          end
        end
      end
      local waiting = math.max(0, len - held)
      local first_ready = 0
      if waiting > 0 then
        local from = '-'
        if newest_held then
          from = '(' .. newest_held
        end
        first_ready = age(redis.call('XRANGE', stream, from, '+', 'COUNT', 1))
        tenants[#tenants + 1] = {tenant, lane, waiting, first_ready}
      end
      ready, pending = ready + waiting, pending + held
      oldest_ready = math.max(oldest_ready, first_ready)
      oldest = math.max(oldest, age(redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)))
    end
  end
  lanes[#lanes + 1] = lane
  lanes[#lanes + 1] = ready
  lanes[#lanes + 1] = pending
  lanes[#lanes + 1] = oldest_ready
  lanes[#lanes + 1] = oldest
end

table.sort(tenants, function(a, b)
  if a[3] ~= b[3] then
    return a[3] > b[3]
  end
  if a[1] ~= b[1] then
    return a[1] < b[1]
  end
  return a[2] < b[2]
end)
local listed = {}
for i = 1, math.min(top, #tenants) do
  for _, value in ipairs(tenants[i]) do
    listed[#listed + 1] = value
  end
end
local consumers = {}
for name, count in pairs(in_hand) do
  consumers[#consumers + 1] = name
  consumers[#consumers + 1] = count
end
return {lanes, consumers, listed}
