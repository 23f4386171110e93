-- The OTP guard (docs/otp-guard.md): the rules an OTP passes before it is enqueued. The
-- enqueue script calls `guard_otp` for OTP jobs before it writes anything, so the check and
-- the enqueue are one step: a refused OTP writes no job, no record, no idempotency claim.
--
-- Everything the guard knows of one prefix (a number without its last four digits) is one
-- hash (Keys::guard_prefix), so an accepted OTP costs it one read and one write:
--   b, r       blocked until (ms, Unix), and the rule that blocked it
--   w, c, p    the per-prefix window's index (now // window), OTPs accepted in it, and in
--              the window before
--   d, cs, cv, ps, pv   the conversion's day (now // 24h), OTPs sent and verified in it, and
--              in the day before
--   n<digits>  one number's accepted OTPs (its last digits name it): their times (ms),
--              oldest first, comma-separated, only those still in the per-number window
--   x          the hash's expiry as last set (ms, Unix): it only ever moves later
--   j          the ids of the prefix's last accepted OTPs (as many as the per-prefix limit),
--              comma-separated: when the prefix is blocked, those still queued are
--              cancelled (enqueue.lua), so a flood's admitted OTPs never queue ahead of
--              other prefixes' OTPs
-- A count over a window is two fixed windows read as a sliding one: all of the current
-- window, and the share of the previous one that the sliding window ending now still
-- covers. Times are the caller's (ms, Unix); hosts' clocks a few seconds apart change
-- nothing that matters at these scales.
--
-- A refused OTP writes its refusal's count (Keys::guard_refused: per rule and minute, kept
-- two hours) and, when it blocks its prefix, the block (and enqueue.lua cancels the
-- prefix's OTPs still queued, from `j`): never any per-number state.

local GUARD_DAY_MS = 86400000
local GUARD_HOUR_MS = 3600000

-- Two fixed windows of `window` ms (the stored `index` and counts `cur`, `prev`) moved to
-- the window `now` falls in: its index, the two counts, and the sliding count.
local function guard_roll(index, cur, prev, now, window)
  local at = math.floor(now / window)
  index = tonumber(index)
  cur = tonumber(cur) or 0
  prev = tonumber(prev) or 0
  if index == nil or at > index + 1 then
    cur, prev = 0, 0
  elseif at == index + 1 then
    cur, prev = 0, cur
  else
    -- The same window, or a caller whose clock is behind the last one's: never moved back.
    at = index
  end
  local covered = 1 - (now - at * window) / window
  if covered < 0 then
    covered = 0
  elseif covered > 1 then
    covered = 1
  end
  return at, cur, prev, cur + prev * covered
end

-- A number's log (`n<digits>`) without the times older than `window`, and, when it already
-- holds `limit` of them, how long until the oldest of those that count leaves the window.
local function guard_number(log, now, limit, window)
  local kept = {}
  if log then
    for t in string.gmatch(log, '%d+') do
      if tonumber(t) > now - window then
        kept[#kept + 1] = t
      end
    end
  end
  if #kept >= limit then
    return kept, tonumber(kept[#kept - limit + 1]) + window - now
  end
  return kept, nil
end

-- Makes the prefix's hash `key` last until `need` (ms, Unix) at least, given `x`, the expiry
-- it was last given (nil: none yet).
local function guard_expire(key, x, need, now)
  if x == nil or need > x then
    redis.call('HSET', key, 'x', need)
    redis.call('PEXPIRE', key, math.max(1, need - now))
  end
end

-- Deletes the number logs of the prefix's hash `key` whose newest time is older than
-- `window`: a prefix in steady use keeps only its numbers of the last window.
local function guard_prune(key, now, window)
  local all = redis.call('HGETALL', key)
  local stale = {}
  for i = 1, #all, 2 do
    if string.sub(all[i], 1, 1) == 'n' then
      local newest = tonumber(string.match(all[i + 1], '(%d+)$'))
      if newest == nil or newest <= now - window then
        stale[#stale + 1] = all[i]
      end
    end
  end
  for i = 1, #stale, 1000 do
    redis.call('HDEL', key, unpack(stale, i, math.min(i + 999, #stale)))
  end
end

-- Counts a refusal of `rule` (its minute, for `status`) and answers it: {rule, ms until it
-- frees, -1 for never}.
local function guard_refuse(refused, rule, now, retry)
  redis.call('HINCRBY', refused, rule .. ':' .. math.floor(now / 60000), 1)
  local ends = (math.floor(now / GUARD_HOUR_MS) + 2) * GUARD_HOUR_MS
  redis.call('PEXPIRE', refused, ends - now)
  return {rule, math.ceil(retry)}
end

-- Blocks the prefix (its hash `keys.prefix`) until `ends` (ms, Unix) for `rule`, and lists
-- it among the blocked prefixes, which drop the blocks that ended and last as long as the
-- last block. The ids of its last accepted OTPs leave the hash: the caller cancels them.
local function guard_block(keys, prefix, rule, now, ends, x)
  redis.call('HSET', keys.prefix, 'b', ends, 'r', rule)
  redis.call('HDEL', keys.prefix, 'j')
  guard_expire(keys.prefix, x, ends, now)
  redis.call('ZADD', keys.blocked, ends, prefix)
  redis.call('ZREMRANGEBYSCORE', keys.blocked, '-inf', now)
  redis.call('PEXPIRE', keys.blocked, ends - now, 'NX')
  redis.call('PEXPIRE', keys.blocked, ends - now, 'GT')
end

-- The rules, for one OTP (its job id `id`): nil when it may go (and then it is counted), or
-- its refusal ({rule, ms until it frees or -1}; nothing counted but the refusal) and, when
-- it blocks the prefix, the ids of the prefix's last accepted OTPs (a list), for the caller
-- to cancel those still queued.
-- `keys`: prefix (its hash), blocked (the blocked prefixes), refused (this hour's refusal
-- counts), reports (set once any verification was reported). From ARGV[at]: the number's
-- calling code, the allowed codes (',+91,+971,'; '' for every one), the prefix, the
-- number's last digits, now (ms, Unix), the per-number limit and window (ms), the
-- per-prefix limit and window (ms), the block (ms), the least conversion ('0': the rule is
-- off) and the sends a prefix needs before conversion applies.
local function guard_otp(keys, at, id)
  local now = tonumber(ARGV[at + 4])
  local allowed = ARGV[at + 1]
  if allowed ~= '' and not string.find(allowed, ',' .. ARGV[at] .. ',', 1, true) then
    return guard_refuse(keys.refused, 'country', now, -1)
  end
  local prefix, number = ARGV[at + 2], 'n' .. ARGV[at + 3]
  local f = redis.call('HMGET', keys.prefix, 'b', 'w', 'c', 'p', 'd', 'cs', 'cv', 'ps',
    'pv', 'x', number, 'j')
  local ids = {}
  if f[12] then
    for queued in string.gmatch(f[12], '[^,]+') do
      ids[#ids + 1] = queued
    end
  end
  local x = tonumber(f[10])
  local blocked = tonumber(f[1])
  if blocked and blocked > now then
    return guard_refuse(keys.refused, 'prefix_blocked', now, blocked - now)
  end
  local number_window = tonumber(ARGV[at + 6])
  local log, wait = guard_number(f[11], now, tonumber(ARGV[at + 5]), number_window)
  if wait then
    return guard_refuse(keys.refused, 'per_number', now, wait)
  end
  local block = tonumber(ARGV[at + 9])
  local window = tonumber(ARGV[at + 8])
  local w, c, p, recent = guard_roll(f[2], f[3], f[4], now, window)
  local limit = tonumber(ARGV[at + 7])
  if recent >= limit then
    guard_block(keys, prefix, 'per_prefix', now, now + block, x)
    return guard_refuse(keys.refused, 'per_prefix', now, block), ids
  end
  local d, cs, ps, sends = guard_roll(f[5], f[6], f[8], now, GUARD_DAY_MS)
  local _, cv, pv, verified = guard_roll(f[5], f[7], f[9], now, GUARD_DAY_MS)
  local least = tonumber(ARGV[at + 10])
  if least > 0 and sends >= tonumber(ARGV[at + 11]) and verified < least * sends
      and redis.call('EXISTS', keys.reports) == 1 then
    guard_block(keys, prefix, 'conversion', now, now + block, x)
    return guard_refuse(keys.refused, 'conversion', now, block), ids
  end
  if f[2] and w ~= tonumber(f[2]) then
    guard_prune(keys.prefix, now, number_window)
  end
  log[#log + 1] = ARGV[at + 4]
  ids[#ids + 1] = id
  local first = math.max(1, #ids - limit + 1)
  redis.call('HSET', keys.prefix, 'w', w, 'c', c + 1, 'p', p, 'd', d, 'cs', cs + 1, 'cv', cv,
    'ps', ps, 'pv', pv, number, table.concat(log, ','), 'j',
    table.concat(ids, ',', first, #ids))
  -- The counts matter until the window after theirs ends; a number's times (a per-number
  -- window is at most a day) until the day after theirs ends.
  guard_expire(keys.prefix, x, math.max((w + 2) * window, (d + 2) * GUARD_DAY_MS), now)
  return nil
end
