-- Read up to `want` new jobs of one lane for one replica, tenants served in turn: the
-- tenants with jobs not yet read (the lane's turns, lowest virtual time first) each get a
-- share of the read by weight; each tenant's virtual time grows by jobs read / weight, so
-- over reads every tenant with a backlog gets its weight's share, and a tenant that newly
-- has a job (entering at the lowest virtual time: tenant.lua) is read at the next read,
-- whatever the backlog of the others. A tenant with nothing left to read leaves the turns.
-- Every read is an XREADGROUP of the workers' group, as before: the entries stay pending
-- with this replica until settled.
-- KEYS[1] the lane's turns
-- ARGV[1] the namespace's prefix, ARGV[2] the lane, ARGV[3] the workers' group, ARGV[4] the
-- consumer, ARGV[5] how many at most, from ARGV[6] tenants' weights (name, weight) for
-- those not weighing 1
-- The default tenant's stream (the lane's own) is read at every read even when it has no
-- turn: a producer of an earlier release adds to it without taking a turn, and its jobs are
-- read as soon as any other's (once read, the tenant takes its turn as tenant.lua's would).
-- Returns {tenant, entry id, fields, ...} flat, or when nothing was read {'', bell's last
-- id, the lane's own stream's last id}: the replica blocks on both from there.
local prefix, lane, group, consumer = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local left = tonumber(ARGV[5])
local weights = {}
for i = 6, #ARGV, 2 do
  weights[ARGV[i]] = tonumber(ARGV[i + 1])
end
local out = {}
local unannounced = not redis.call('ZSCORE', KEYS[1], 'default')

-- One XREADGROUP for every stream of the round that reads `quota` entries (COUNT is per
-- stream), so a round costs a few commands however many tenants it serves. A stream whose
-- group is gone (Redis lost its data) fails the whole call: those are then read one by
-- one, and the group made again for the next read. Returns {stream = entries}.
local function read_streams(streams, quota, got)
  local call = {'XREADGROUP', 'GROUP', group, consumer, 'COUNT', quota, 'STREAMS'}
  for _, stream in ipairs(streams) do
    call[#call + 1] = stream
  end
  for _ = 1, #streams do
    call[#call + 1] = '>'
  end
  local ok, reply = pcall(redis.call, unpack(call))
  if ok then
    for _, one in ipairs(reply or {}) do
      got[one[1]] = one[2]
    end
    return
  end
  for _, stream in ipairs(streams) do
    local one_ok, one = pcall(redis.call, 'XREADGROUP', 'GROUP', group, consumer, 'COUNT', quota,
      'STREAMS', stream, '>')
    if one_ok and one and one[1] then
      got[stream] = one[1][2]
    elseif not one_ok then
      redis.pcall('XGROUP', 'CREATE', stream, group, '0', 'MKSTREAM')
    end
  end
end

for round = 1, 16 do
  if left <= 0 then
    break
  end
  local ranked = redis.call('ZRANGE', KEYS[1], 0, left - 1, 'WITHSCORES')
  local picks, scores = {}, {}
  for i = 1, #ranked, 2 do
    picks[#picks + 1] = ranked[i]
    scores[ranked[i]] = tonumber(ranked[i + 1])
  end
  local forced = round == 1 and unannounced
  if forced then
    picks[#picks + 1] = 'default'
  end
  if #picks == 0 then
    break
  end
  local total = 0
  for _, tenant in ipairs(picks) do
    total = total + (weights[tenant] or 1)
  end
  -- Each pick's share of the read by weight (at least one), while the read has room.
  local quotas, by_quota, room = {}, {}, left
  for _, tenant in ipairs(picks) do
    if room <= 0 then
      break
    end
    local quota = math.min(room, math.max(1, math.floor(left * (weights[tenant] or 1) / total)))
    quotas[tenant] = quota
    room = room - quota
    by_quota[quota] = by_quota[quota] or {}
    table.insert(by_quota[quota], stream_of(prefix, lane, tenant))
  end
  local got = {}
  for quota, streams in pairs(by_quota) do
    read_streams(streams, quota, got)
  end
  local done, moved = {}, {}
  local lowest = ranked[2] or 0
  for _, tenant in ipairs(picks) do
    local quota = quotas[tenant]
    if quota then
      local entries = got[stream_of(prefix, lane, tenant)] or {}
      for _, entry in ipairs(entries) do
        out[#out + 1] = tenant
        out[#out + 1] = entry[1]
        out[#out + 1] = entry[2]
      end
      left = left - #entries
      if #entries < quota then
        done[#done + 1] = tenant
      elseif forced and tenant == 'default' then
        redis.call('ZADD', KEYS[1], 'NX', lowest, 'default')
      else
        moved[#moved + 1] = scores[tenant] + #entries / (weights[tenant] or 1)
        moved[#moved + 1] = tenant
      end
    end
  end
  if #done > 0 then
    redis.call('ZREM', KEYS[1], unpack(done))
  end
  if #moved > 0 then
    redis.call('ZADD', KEYS[1], unpack(moved))
  end
end
local function last_id(stream)
  local last = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
  if #last > 0 then
    return last[1][1]
  end
  return '0-0'
end
if #out == 0 then
  return {'', last_id(prefix .. 'lane:' .. lane .. ':bell'), last_id(stream_of(prefix, lane, 'default'))}
end
return out
