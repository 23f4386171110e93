-- The shared budget: every replica's requests go through here.
--
-- Three rules, all decided on Redis's clock (TIME), so hosts' clocks never matter:
-- 1. The sliding log: at most E requests in any sliding W, each counted from a time it
--    cannot have reached Interakt after: while in flight, its grant plus `flight` (the
--    request timeout plus the margin: however long its connection takes to come up, the
--    request is answered, or given up, by then); then its answer (the settle re-scores the
--    entry, and puts it back if it left: token.lua). E is the effective budget (the
--    configured N, halved per 429 episode, grown back by `step` per clean period; see
--    cooldown.lua). Bookings leave OTPs a reserve that follows their demand: as many tokens
--    as OTPs took in the current or the previous window of W (windows aligned on W: the
--    OTPs' log keeps two), up to `reserve`; while OTPs use some in the sliding window, at
--    least that plus `spare` tokens (1% of N: none below N = 100), so the next OTP finds
--    one at once;
--    and, when no OTP came for two windows, one token (none below N = 100, where it would
--    cost more than 1% of the budget), so the first OTP after a quiet stretch finds it.
--    OTPs spend the reserve on top of the bookings. An OTP that finds the log full goes
--    first for the next token that frees (KEYS[6]). While bookings are waiting (KEYS[4] lives), OTPs never
--    take more than E - `share` of it, and bookings may always use their `share`, reserve
--    or OTPs waiting.
-- 2. Global pacing (GCRA): requests from all replicas together are spread one every
--    T = W / E (the "theoretical arrival time" `tat` in KEYS[3]); every lane may run at
--    most `burst` tokens ahead of it, so the window is never spent early, whatever the
--    number of replicas. OTPs have the reserve on top, paced apart (`rtat`: `reserve`
--    tokens at once, one more every W / reserve): an OTP never waits behind the bookings'
--    pace, and a burst of OTPs spends the reserve's pacing, not the bookings'. An OTP's
--    grant takes the pace's token due now, then the reserve's, then the pace's ahead of
--    schedule; a refund gives each back its own (token.lua).
-- 3. The cool-down: while KEYS[2] lives (after a 429), nothing is granted but one probe
--    every probe interval, when the pause is longer than that: cooldown.lua and probe.lua
--    schedule it in the state (`probe_at`; `probe` and `probe_until` while one is in
--    flight, so one replica at a time sends it). A probe is one token under every rule
--    above, an OTP's first (one waiting claims it in KEYS[6]); its 2xx ends the cool-down
--    for every replica (probe.lua), its 429 keeps it (cooldown.lua). The budget does not
--    grow while paused: it grows again from the probe's 2xx.
--
-- KEYS[1] the log (sorted set: one member per admitted request, scored in microseconds)
-- KEYS[2] the cool-down (its TTL is the remaining pause)
-- KEYS[3] the budget's state (hash: configured, effective, changed_at, tat, ...)
-- KEYS[4] "bookings are waiting" (a key with a short TTL)
-- KEYS[5] the OTPs' own log (sorted set, like KEYS[1] but OTPs only, kept two windows)
-- KEYS[6] the OTPs going first (sorted set: a replica whose OTP found the log full, scored
--         by when its claim lapses)
-- ARGV[1] configured N, ARGV[2] flight (us: request timeout plus margin), ARGV[3] tokens wanted,
-- ARGV[4] unique member prefix for this call, ARGV[5] lane ('otp' or 'booking'),
-- ARGV[6] OTP reserve (tokens), ARGV[7] bookings' share (tokens), ARGV[8] W (us),
-- ARGV[9] burst (tokens), ARGV[10] growth step per clean period (tokens),
-- ARGV[11] the asking replica (its claim in KEYS[6]), ARGV[12] spare tokens kept free
-- beyond the OTPs' use
-- Returns {granted, wait_us, probe, reserved}: granted > 0, or 0 and how long until asking
-- again can help; probe 1 when the token granted is the cool-down's probe; reserved: how
-- many of the granted tokens (the last ones) are the OTP reserve's.
-- (`now` and `int` come from clock.lua, in front.)
local N = tonumber(ARGV[1])
local flight = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local otp = ARGV[5] == 'otp'
local reserve = tonumber(ARGV[6])
local share = tonumber(ARGV[7])
local period = tonumber(ARGV[8])
local window = period
local burst = tonumber(ARGV[9])
local step = tonumber(ARGV[10])
local spare = tonumber(ARGV[12])

-- This replica's OTP goes first, until its claim `lapses` (it asks again by then).
local function claim(lapses)
  redis.call('ZADD', KEYS[6], int(lapses), ARGV[11])
  redis.call('PEXPIRE', KEYS[6], math.ceil((lapses - now) / 1000) + 1000)
end

-- 3. The cool-down, and its probe.
local cooldown = redis.call('PTTL', KEYS[2])
local probing = false
if cooldown > 0 then
  local left = cooldown * 1000
  local p = redis.call('HMGET', KEYS[3], 'probe_at', 'probe_until')
  local probe_at = tonumber(p[1])
  if not probe_at then
    return {0, left, 0, 0}
  end
  if (tonumber(p[2]) or 0) > now then
    -- A probe in flight may end the pause any moment: look again soon (an OTP waiting
    -- takes the next probe if this one is answered 429).
    if otp then
      claim(now + 500000)
    end
    return {0, math.max(1000, math.min(left, 100000)), 0, 0}
  end
  if probe_at - now >= left then
    -- The pause ends first.
    return {0, left, 0, 0}
  end
  if now < probe_at then
    if otp then
      claim(probe_at + 500000)
    end
    return {0, math.max(1000, probe_at - now), 0, 0}
  end
  if not otp then
    redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', int(now))
    if redis.call('ZCARD', KEYS[6]) > 0 then
      -- An OTP waits for this probe.
      return {0, math.min(left, 100000), 0, 0}
    end
  end
  probing = true
  want = 1
end

-- The effective budget: grown back by `step` for each clean period since the last change.
local st = redis.call('HMGET', KEYS[3], 'effective', 'changed_at', 'tat', 'configured',
  'reserve', 'share', 'rtat')
local eff = math.min(N, tonumber(st[1]) or N)
local changed = tonumber(st[2]) or now
local tat = math.max(tonumber(st[3]) or now, now)
-- The state outlives a pause in force: its probes are scheduled there.
local state_ttl = math.ceil(period / 1000) * 10 + math.max(cooldown, 0)
if not probing and eff < N and now - changed >= period then
  local periods = math.floor((now - changed) / period)
  eff = math.min(N, eff + step * periods)
  changed = now
end
-- Written only when something changed (the hot path reads); `status` reads these fields.
if tonumber(st[1]) ~= eff or tonumber(st[2]) ~= changed or tonumber(st[4]) ~= N
    or tonumber(st[5]) ~= reserve or tonumber(st[6]) ~= share then
  redis.call('HSET', KEYS[3], 'configured', N, 'effective', eff, 'changed_at', int(changed),
    'reserve', reserve, 'share', share)
  redis.call('PEXPIRE', KEYS[3], state_ttl)
end

local bookings_waiting = redis.call('EXISTS', KEYS[4]) == 1
local interval = period / eff
if not otp then
  redis.call('SET', KEYS[4], 1, 'PX', math.max(1000, math.ceil(interval * 4 / 1000)))
end

-- 1. The log: at most E entries in all. Bookings' own entries (all but the OTPs') stay at
-- most E less what they hold for OTPs, which may spend it on top of a full backlog.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', int(now - window))
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', int(now - 2 * window))
local used = redis.call('ZCARD', KEYS[1])
local otp_used = redis.call('ZCOUNT', KEYS[5], '(' .. int(now - window), '+inf')
-- OTPs' entries older than the sliding window, first in their log.
local otp_older = redis.call('ZCARD', KEYS[5]) - otp_used
local bookings_used = used - otp_used
local room = eff - used
local free = room
local index = math.max(0, used - eff)
local log = KEYS[1]
if otp and bookings_waiting then
  local otp_cap = eff - math.min(share, eff - 1)
  if otp_cap - otp_used < free then
    free = otp_cap - otp_used
    log = KEYS[5]
    index = otp_older + math.max(0, otp_used - otp_cap)
  end
elseif not otp then
  -- Held from bookings: the OTPs' demand (the most they took in this or the previous
  -- aligned window, up to the reserve), what they use plus `spare`, or the one token kept
  -- for the first OTP after a quiet stretch, whichever is most.
  local this_window = math.floor(now / window) * window
  local demand = math.max(
    redis.call('ZCOUNT', KEYS[5], int(this_window), '+inf'),
    redis.call('ZCOUNT', KEYS[5], int(this_window - window), '(' .. int(this_window)))
  local in_use = 0
  if otp_used > 0 then
    in_use = otp_used + spare
  end
  local held = math.max(math.min(reserve, demand), in_use, math.min(spare, 1))
  local own_cap = eff - math.min(held, eff - 1)
  if own_cap - bookings_used < free then
    free = own_cap - bookings_used
    index = 0
  end
  -- OTPs waiting for the next token to free up go first.
  redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', int(now))
  local first = redis.call('ZRANGE', KEYS[6], 0, 0, 'WITHSCORES')
  if #first > 0 and free > 0 then
    free = 0
  end
  -- Bookings may always use their share, reserve or OTPs waiting.
  free = math.max(free, math.min(share - bookings_used, room))
  if free <= 0 and #first > 0 then
    return {0, math.max(1000, math.min(interval, tonumber(first[2]) - now)), 0, 0}
  end
end
if free <= 0 then
  -- Wait for the entry whose leaving brings this lane under its cap (for bookings under
  -- their own cap, the oldest entry: an estimate, asked again then).
  -- An entry still in flight (scored ahead of now) leaves a window after its answer, which
  -- may come at once: asking again in a window is the estimate.
  local oldest = redis.call('ZRANGE', log, index, index, 'WITHSCORES')
  local wait = 1000
  if #oldest > 0 then
    wait = math.max(1000, math.min(tonumber(oldest[2]), now) + window - now + 1)
  end
  if otp and room <= 0 and log == KEYS[1] then
    -- The window is full: this replica's OTP takes the next token that frees up, before any
    -- booking.
    claim(now + wait + interval + 50000)
  end
  return {0, wait, 0, 0}
end

-- 2. Pacing: `burst` tokens ahead of the schedule, and for OTPs the reserve's on top.
local function ahead_of(at, by, step)
  local early = at - now
  local tolerance = (by - 1) * step
  if early > tolerance then
    return 0, math.ceil(early - tolerance)
  end
  return math.floor((tolerance - early) / step) + 1, 0
end
local paced, wait = ahead_of(tat, burst, interval)
local rtat, rinterval, reserved = now, 0, 0
if otp and reserve > 0 then
  rinterval = window / reserve
  rtat = math.max(tonumber(st[7]) or now, now)
  local rwait
  reserved, rwait = ahead_of(rtat, reserve, rinterval)
  if paced == 0 and reserved == 0 then
    wait = math.min(wait, rwait)
  end
end
if paced + reserved == 0 then
  return {0, math.max(1000, wait), 0, 0}
end
local granted = math.min(want, free, paced + reserved)
-- An OTP takes the pace's token due now (when the pace is not ahead of its schedule), then
-- the reserve's, then the pace's ahead of the schedule: a few OTPs spend the reserve rather
-- than push the bookings' pace, and a backlog of bookings (the pace always ahead) never
-- holds an OTP back while the reserve lasts.
local due_now = 0
if otp and tat <= now and paced > 0 then
  due_now = 1
end
reserved = math.min(reserved, granted - math.min(granted, due_now))
paced = granted - reserved
if otp then
  redis.call('ZREM', KEYS[6], ARGV[11])
end
-- The granted tokens, scored in flight, into the log (and the OTPs' log): one ZADD per log
-- for them all (per 1,000 tokens: `unpack` has a limit, and `granted` is at most `burst`
-- plus the OTP reserve, which is configured).
local entries = {}
local in_flight = int(now + flight)
for i = 1, granted do
  entries[2 * i - 1] = in_flight
  entries[2 * i] = ARGV[4] .. ':' .. i
end
for first = 1, #entries, 2000 do
  local last = math.min(first + 1999, #entries)
  redis.call('ZADD', KEYS[1], unpack(entries, first, last))
  if otp then
    redis.call('ZADD', KEYS[5], unpack(entries, first, last))
  end
end
if reserved > 0 then
  redis.call('HSET', KEYS[3], 'tat', int(tat + paced * interval), 'rtat',
    int(rtat + reserved * rinterval))
else
  redis.call('HSET', KEYS[3], 'tat', int(tat + paced * interval))
end
if probing then
  redis.call('HSET', KEYS[3], 'probe', ARGV[4] .. ':1', 'probe_until', int(now + flight))
end
redis.call('PEXPIRE', KEYS[3], state_ttl)
-- The logs outlive their last entry: one in flight counts until a window after its score.
local ttl = math.ceil((window + flight) / 1000) + 1000
redis.call('PEXPIRE', KEYS[1], ttl)
if otp then
  redis.call('PEXPIRE', KEYS[5], ttl + math.ceil(window / 1000))
end
if probing then
  return {granted, 0, 1, reserved}
end
return {granted, 0, 0, reserved}
