-- The OTP guard (docs/otp-guard.md): the rules an OTP passes before it is enqueued. The
-- enqueue script calls `guard_otp` for OTP jobs before it writes anything, so the check and
-- the enqueue are one step: a refused OTP writes no job, no record, no idempotency claim.
--
-- Everything the guard knows of one prefix (a number without its last four digits) is one
-- hash (Keys::guard_prefix), so an accepted OTP costs it one read and one write (and, when
-- the hash is new or its expiry moves later, one PEXPIRE):
--   b, r       blocked until (ms, Unix), and the rule that blocked it
--   s          the counts, space-separated, read and written whole: the per-prefix window's
--              index (now // window), OTPs accepted in it and in the window before; the
--              conversion's day (now // 24h), OTPs sent and verified in it, and in the day
--              before; the prefix's pace (`w c p d cs cv ps pv q`: see GUARD_BURST)
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
-- A prefix's accepted OTPs go at once up to GUARD_BURST in a row, then one every
-- GUARD_SPACING_MS (GCRA on `q`, the prefix's theoretical time, ms): the others are held
-- back, scheduled when their turn comes (enqueue.lua). A flood's admitted OTPs then reach
-- the budget a few at a time, and when the flood blocks its prefix those still held back
-- are cancelled: a flood spends at most GUARD_BURST of the plan's tokens at once, and a
-- prefix's legitimate OTPs, seldom more than one a second, are never held.
local GUARD_BURST = 5
local GUARD_SPACING_MS = 1000

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

-- The counts of `s` (nil: none yet): w, c, p, d, cs, cv, ps, pv, q as strings (none: an
-- empty table). One match, no iterator: this runs for every OTP.
local function guard_counts(packed)
  if packed then
    return {string.match(packed,
      '^(%d+) (%d+) (%d+) (%d+) (%d+) (%d+) (%d+) (%d+) (%d+)$')}
  end
  return {}
end

-- Writes `fields` (names and values) to the prefix's hash `key` and makes the hash last
-- until `need` (ms, Unix) at least, given `x`, the expiry it was last given (nil: none yet):
-- the expiry only ever moves later, and is written with the fields.
local function guard_write(key, fields, x, need, now)
  if x == nil or need > x then
    fields[#fields + 1] = 'x'
    fields[#fields + 1] = need
    redis.call('HSET', key, unpack(fields))
    redis.call('PEXPIRE', key, math.max(1, need - now))
  else
    redis.call('HSET', key, unpack(fields))
  end
end

-- `ms` (Unix) as RFC 3339 in UTC, as the records write times (`2026-12-07T01:40:00.123Z`):
-- days to a civil date by Howard Hinnant's `civil_from_days`.
local function guard_rfc3339(ms)
  local secs = math.floor(ms / 1000)
  local days = math.floor(secs / 86400)
  local of_day = secs - days * 86400
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524)
    - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local day = doy - math.floor((153 * mp + 2) / 5) + 1
  local month = mp < 10 and mp + 3 or mp - 9
  local year = yoe + era * 400
  if month <= 2 then
    year = year + 1
  end
  return string.format('%04d-%02d-%02dT%02d:%02d:%02d.%03dZ', year, month, day,
    math.floor(of_day / 3600), math.floor(of_day % 3600 / 60), of_day % 60, ms % 1000)
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
  guard_write(keys.prefix, {'b', ends, 'r', rule}, x, ends, now)
  redis.call('HDEL', keys.prefix, 'j')
  redis.call('ZADD', keys.blocked, ends, prefix)
  redis.call('ZREMRANGEBYSCORE', keys.blocked, '-inf', now)
  redis.call('PEXPIRE', keys.blocked, ends - now, 'NX')
  redis.call('PEXPIRE', keys.blocked, ends - now, 'GT')
end

-- The rules, for one OTP (its job id `id`): nil when it may go (and then it is counted),
-- with when it is held back to (ms, Unix; nil: it goes now), or its refusal ({rule, ms
-- until it frees or -1}; nothing counted but the refusal) and, when it blocks the prefix,
-- the ids of the prefix's last accepted OTPs (a list), for the caller to cancel those still
-- queued.
-- `keys`: prefix (its hash), blocked (the blocked prefixes), refused (this hour's refusal
-- counts), reports (set once any verification was reported). The guard's settings, the same
-- for every OTP of a call, from ARGV[at]: the allowed codes (',+91,+971,'; '' for every
-- one), now (ms, Unix), the per-number limit and window (ms), the per-prefix limit and
-- window (ms), the block (ms), the least conversion ('0': the rule is off) and the sends a
-- prefix needs before conversion applies. The number's parts from ARGV[number_at]: its
-- calling code, its prefix, its last digits.
local function guard_otp(keys, at, number_at, id)
  local now = tonumber(ARGV[at + 1])
  local allowed = ARGV[at]
  if allowed ~= '' and not string.find(allowed, ',' .. ARGV[number_at] .. ',', 1, true) then
    return guard_refuse(keys.refused, 'country', now, -1)
  end
  local prefix, number = ARGV[number_at + 1], 'n' .. ARGV[number_at + 2]
  local f = redis.call('HMGET', keys.prefix, 'b', 's', 'x', number, 'j')
  local ids = {}
  if f[5] then
    for queued in string.gmatch(f[5], '[^,]+') do
      ids[#ids + 1] = queued
    end
  end
  local x = tonumber(f[3])
  local blocked = tonumber(f[1])
  if blocked and blocked > now then
    return guard_refuse(keys.refused, 'prefix_blocked', now, blocked - now)
  end
  local number_window = tonumber(ARGV[at + 3])
  local log, wait = guard_number(f[4], now, tonumber(ARGV[at + 2]), number_window)
  if wait then
    return guard_refuse(keys.refused, 'per_number', now, wait)
  end
  local block = tonumber(ARGV[at + 6])
  local window = tonumber(ARGV[at + 5])
  local counts = guard_counts(f[2])
  local w, c, p, recent = guard_roll(counts[1], counts[2], counts[3], now, window)
  local limit = tonumber(ARGV[at + 4])
  if recent >= limit then
    guard_block(keys, prefix, 'per_prefix', now, now + block, x)
    return guard_refuse(keys.refused, 'per_prefix', now, block), ids
  end
  local d, cs, ps, sends = guard_roll(counts[4], counts[5], counts[7], now, GUARD_DAY_MS)
  local _, cv, pv, verified = guard_roll(counts[4], counts[6], counts[8], now, GUARD_DAY_MS)
  local least = tonumber(ARGV[at + 7])
  if least > 0 and sends >= tonumber(ARGV[at + 8]) and verified < least * sends
      and redis.call('EXISTS', keys.reports) == 1 then
    guard_block(keys, prefix, 'conversion', now, now + block, x)
    return guard_refuse(keys.refused, 'conversion', now, block), ids
  end
  if counts[1] and w ~= tonumber(counts[1]) then
    guard_prune(keys.prefix, now, number_window)
  end
  log[#log + 1] = ARGV[at + 1]
  ids[#ids + 1] = id
  local q = math.max(tonumber(counts[9]) or now, now)
  local held = nil
  if q - now > (GUARD_BURST - 1) * GUARD_SPACING_MS then
    held = q - (GUARD_BURST - 1) * GUARD_SPACING_MS
  end
  local first = math.max(1, #ids - limit + 1)
  -- The counts matter until the window after theirs ends; a number's times (a per-number
  -- window is at most a day) until the day after theirs ends.
  guard_write(keys.prefix, {'s', string.format('%d %d %d %d %d %d %d %d %d', w, c + 1, p, d,
    cs + 1, cv, ps, pv, q + GUARD_SPACING_MS), number, table.concat(log, ','), 'j',
    table.concat(ids, ',', first, #ids)}, x,
    math.max((w + 2) * window, (d + 2) * GUARD_DAY_MS), now)
  return nil, held
end
