-- Enqueue one job, atomically: claim its idempotency key, supersede the older job of its
-- replace key, write its record, and put it on its lane (or, scheduled, in its lane's
-- scheduled set with its body stored once) -- all of it, or (a duplicate or conflicting
-- idempotency key, an OTP the guard refuses) nothing.
--
-- An OTP (with the guard on) passes the OTP guard's rules first (guard.lua), after the
-- idempotency key is read and before anything is written: a duplicate is answered as one
-- and not counted again; a refused OTP writes nothing of its own.
--
-- The idempotency claim holds "<first job id>:<content fingerprint>", so a later job under
-- the same key is told apart: the same content is a duplicate, other content a conflict. A
-- claim in the old format (the first job's id alone, no ':') has no fingerprint and counts
-- as the same content: a duplicate, as it always was. The claim follows the job (see
-- `follow_claim` in lifecycle.lua): it is held for as long as the job is pending, however far
-- ahead it is scheduled, for the window once the job has finished, and freed by a cancel.
--
-- A replace key's value is the id of the last job enqueued under it; that job is stopped
-- (stop.lua): superseded if it has not begun sending; if it is sending, the stop is noted
-- and this job's record says `supersedes` it, so this job waits until that attempt is over
-- (begin_send.lua) and can never be overtaken by it.
--
-- KEYS[1] the idempotency claim (the record when the job has no key), KEYS[2] the job's
-- stream (its lane's, its tenant's: tenant.lua), KEYS[3] the job's record, KEYS[4] the
-- replace key (the record when none), KEYS[5] the job lane's scheduled set, KEYS[6]
-- scheduled bodies, KEYS[7] stats, KEYS[8] the booking's index of job ids (the record when
-- none), KEYS[9] the guard's hash of the number's prefix, KEYS[10] the blocked prefixes,
-- KEYS[11] this hour's refusal counts, KEYS[12] the verification reports' flag (KEYS[9] to
-- KEYS[12] are the record when the guard does not apply)
-- ARGV[1] the job's id, ARGV[2] the key's window in ms, ARGV[3] the job's JSON,
-- ARGV[4] the stream field name, ARGV[5] the job's content fingerprint (hex),
-- ARGV[6] '1' when the job has an idempotency key, ARGV[7] '1' when it has a replace key,
-- ARGV[8] the record's ttl (s), ARGV[9] when it is due (ms, Unix) or '' to send now,
-- ARGV[10] the workers' group, ARGV[11] now (RFC 3339), ARGV[12] the namespace's prefix
-- (`{ns}:`; + `job:` + id = a record key), ARGV[13] a stopped record's ttl, ARGV[14] '1'
-- when the job belongs to a booking (indexed by its id, as long as its record), ARGV[15] the
-- job's lane, ARGV[16] its tenant, ARGV[17] '1' when the OTP guard applies, ARGV[18] to
-- ARGV[29] the guard's arguments (see guard_otp in guard.lua; '' when it does not apply),
-- from ARGV[30] the record's fields (count, names and values: see record.lua)
-- Returns {0, stream entry id ('' when scheduled), superseded job id or '', id of the job
-- still sending that it waits for or '', and when the guard held an OTP back (ms, Unix:
-- scheduled for then) or nothing} for a new job, {1, first job id} for a duplicate,
-- {2, first job id} for a conflict (nothing written), {3, rule, ms until it frees or -1 for
-- never} for an OTP the guard refused (nothing written but the refusal's count and, when
-- it blocks the prefix, the block and the cancels of the prefix's OTPs still queued).
if ARGV[6] == '1' then
  local held = redis.call('GET', KEYS[1])
  if held then
    local sep = string.find(held, ':', 1, true)
    if not sep then
      return {1, held}
    end
    local first = string.sub(held, 1, sep - 1)
    if string.sub(held, sep + 1) == ARGV[5] then
      return {1, first}
    end
    return {2, first}
  end
end
-- An OTP the guard holds back (its prefix's pace, guard.lua): scheduled for then (ms, Unix).
local held = nil
if ARGV[17] == '1' then
  local refused, more = guard_otp(
    {prefix = KEYS[9], blocked = KEYS[10], refused = KEYS[11], reports = KEYS[12]}, 18,
    ARGV[1])
  if refused then
    -- A refusal that blocks the prefix cancels its OTPs still waiting to be sent (stop.lua:
    -- one being sent goes on; one sent, or long gone, is left as it is).
    if more then
      local where = {prefix = ARGV[12], bodies = KEYS[6], stats = KEYS[7]}
      for _, older in ipairs(more) do
        stop(ARGV[12] .. 'job:' .. older, older, where, ARGV[10], ARGV[11], ARGV[13],
          'cancel', false)
      end
    end
    return {3, refused[1], refused[2]}
  end
  if more and (ARGV[9] == '' or more > tonumber(ARGV[9])) then
    held = more
  end
end
if ARGV[6] == '1' then
  redis.call('SET', KEYS[1], ARGV[1] .. ':' .. ARGV[5], 'PX',
    math.max(tonumber(ARGV[2]), tonumber(ARGV[8]) * 1000))
end
local superseded = ''
local waits_for = ''
if ARGV[7] == '1' then
  local older = redis.call('GET', KEYS[4])
  if older and older ~= ARGV[1] then
    local where = {prefix = ARGV[12], bodies = KEYS[6], stats = KEYS[7]}
    local stopped = stop(ARGV[12] .. 'job:' .. older, older, where, ARGV[10], ARGV[11],
      ARGV[13], 'supersede', ARGV[1])
    if stopped == 'stopped' then
      superseded = older
    elseif stopped == 'stopping' then
      waits_for = older
    end
  end
  redis.call('SET', KEYS[4], ARGV[1], 'EX', ARGV[8])
end
record(KEYS[3], 30, ARGV[8])
if waits_for ~= '' then
  redis.call('HSET', KEYS[3], 'supersedes', waits_for)
end
if ARGV[14] == '1' then
  redis.call('SADD', KEYS[8], ARGV[1])
  redis.call('EXPIRE', KEYS[8], ARGV[8])
end
-- Due later (scheduled, or held back by the guard): in the lane's scheduled set.
local due = ARGV[9]
if held then
  redis.call('HSET', KEYS[3], 'state', 'scheduled', 'send_at', guard_rfc3339(held))
  due = held
end
if due ~= '' then
  redis.call('ZADD', KEYS[5], due, ARGV[1])
  redis.call('HSET', KEYS[6], ARGV[1], ARGV[3])
  return {0, '', superseded, waits_for, held}
end
stream_for(ARGV[12], ARGV[15], ARGV[16], ARGV[10])
local entry = redis.call('XADD', KEYS[2], '*', ARGV[4], ARGV[3])
arrive(ARGV[12], ARGV[15], ARGV[16])
redis.call('HSET', KEYS[3], 'entry', entry)
return {0, entry, superseded, waits_for}
