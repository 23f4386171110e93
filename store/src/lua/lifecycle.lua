-- Prelude of every script that moves a job (see docs/lifecycle.md): `may(step, state)`, the
-- one table of allowed steps, is generated in front of this file from
-- store/src/lifecycle.rs (a job with no record may take any step), and `become` is the one
-- way a state is written.

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The idempotency claim follows its job (the record's `claim` names it, `claim_ms` is the
-- key's window): held while the job is pending, as long as its record (`ttl` s, or the
-- window if longer); kept for the window once it is sent, dead or expired; freed when it is
-- cancelled or superseded. Only a claim that still names this job is touched (the key may
-- name a newer job by now); claims of older releases hold the id alone.
local function follow_claim(record, id, to, ttl)
  local c = redis.call('HMGET', record, 'claim', 'claim_ms')
  if not c[1] then
    return
  end
  local held = redis.call('GET', c[1])
  if not held or (held ~= id and string.sub(held, 1, #id + 1) ~= id .. ':') then
    return
  end
  local window = tonumber(c[2]) or 0
  if to == 'cancelled' or to == 'superseded' then
    redis.call('DEL', c[1])
  elseif to == 'sent' or to == 'dead' or to == 'expired' then
    redis.call('PEXPIRE', c[1], math.max(1, window))
  else
    redis.call('PEXPIRE', c[1], math.max(window, tonumber(ttl) * 1000))
  end
end

-- Writes state `to` on the job's record (when it has one) and makes its claim follow.
local function become(record, id, to, ttl)
  if redis.call('EXISTS', record) == 1 then
    redis.call('HSET', record, 'state', to)
    follow_claim(record, id, to, ttl)
  end
end

-- A stop noted while the job was sending (a cancel, or a newer job of its replace key)
-- takes effect: the job ends `cancelled` or `superseded` instead of going on. Its entry is
-- finished by the caller. `stats` and `lane` name the counter.
local function take_stop(record, id, stop, ttl, stats, lane)
  become(record, id, stop, ttl)
  redis.call('HDEL', record, 'stop', 'entry', 'delayed', 'retry_at')
  redis.call('EXPIRE', record, ttl)
  if lane then
    redis.call('HINCRBY', stats, 'cancelled:' .. lane, 1)
  end
end
