-- Prelude: the tenants of a lane. A lane is one stream per tenant (the default tenant's is
-- the lane's own stream, `lane:<lane>`; another's `lane:<lane>:t:<tenant>`), a sorted set of
-- the tenants with jobs not yet read scored by virtual time (`turns`: jobs read / weight,
-- lowest served first), a set of the other tenants whose stream exists (`streams`, for
-- recovery and status), and a bell idle readers block on. Keys are named from the
-- namespace's prefix (`{ns}:`), as store/src/keys.rs names them.

local function norm_tenant(tenant)
  if not tenant or tenant == '' then
    return 'default'
  end
  return tenant
end

local function stream_of(prefix, lane, tenant)
  tenant = norm_tenant(tenant)
  if tenant == 'default' then
    return prefix .. 'lane:' .. lane
  end
  return prefix .. 'lane:' .. lane .. ':t:' .. tenant
end

-- The stream a job of `tenant` goes to, made ready for it: a new tenant's stream is created
-- with the workers' group (so the group sees its first entry) and listed.
local function stream_for(prefix, lane, tenant, group)
  tenant = norm_tenant(tenant)
  local stream = stream_of(prefix, lane, tenant)
  if tenant ~= 'default' and redis.call('SADD', prefix .. 'lane:' .. lane .. ':streams', tenant) == 1 then
    redis.pcall('XGROUP', 'CREATE', stream, group, '0', 'MKSTREAM')
  end
  return stream
end

-- A job was added to `tenant`'s stream of `lane`: the tenant takes its turn. A tenant new to
-- the turns enters at the lane's current virtual time (the lowest score), never ahead of the
-- tenants already waiting and never with credit saved from before; the bell rings for idle
-- readers.
local function arrive(prefix, lane, tenant)
  tenant = norm_tenant(tenant)
  local turns = prefix .. 'lane:' .. lane .. ':turns'
  if redis.call('ZSCORE', turns, tenant) then
    return
  end
  local first = redis.call('ZRANGE', turns, 0, 0, 'WITHSCORES')
  local now = 0
  if #first > 0 then
    now = tonumber(first[2])
  end
  redis.call('ZADD', turns, now, tenant)
  redis.call('XADD', prefix .. 'lane:' .. lane .. ':bell', 'MAXLEN', '~', 32, '*', 't', tenant)
end
