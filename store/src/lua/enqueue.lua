-- Enqueue jobs, one after the other, each atomically: claim its idempotency key, supersede
-- the older job of its replace key, write its record, and put it on its lane (or,
-- scheduled, in its lane's scheduled set with its body stored once) -- all of it, or (a
-- duplicate or conflicting idempotency key, an OTP the guard refuses) nothing. Several jobs
-- in one call (a producer's batch) come out exactly as that many calls of one job each would:
-- a job sees what the jobs before it wrote (a second job of the same key is its duplicate).
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
-- KEYS[1] stats, KEYS[2] scheduled bodies, KEYS[3] the guard's blocked prefixes, KEYS[4]
-- this hour's refusal counts, KEYS[5] the verification reports' flag (KEYS[3] to KEYS[5]
-- are stats when the producer has no guard), then for each job: its record, its stream (its
-- lane's, its tenant's: tenant.lua), then only those of these that its flags name, in this
-- order: its idempotency claim (k), its replace key (r), its booking's index of job ids (b),
-- the guard's hash of its number's prefix (g), its lane's scheduled set (s: it is due later,
-- or the guard may hold it back). A job with none (the usual bulk OTP) has two keys.
-- ARGV[1] how many jobs, ARGV[2] the keys' window in ms, ARGV[3] the stream field name,
-- ARGV[4] the workers' group, ARGV[5] now (RFC 3339), ARGV[6] the namespace's prefix
-- (`{ns}:`; + `job:` + id = a record key), ARGV[7] a stopped record's ttl, ARGV[8] to
-- ARGV[16] the guard's settings (see guard_otp in guard.lua; '' without a guard), then for
-- each job: its id, its JSON, its flags (the letters of the keys it has, above; '' for
-- none), its content fingerprint (hex) when it has an idempotency key (k), the record's ttl
-- in seconds, when it is due (ms, Unix) or '' to send now, its lane, its tenant, then when the
-- guard applies (g) its number's three parts (see guard_otp), then its record's fields
-- (count, names and values: see record.lua)
-- Returns, for each job in order, {0, stream entry id ('' when scheduled), superseded job id
-- or '', id of the job still sending that it waits for or '', and when the guard held an
-- OTP back (ms, Unix: scheduled for then)} for a new job (only its first two when the last
-- three are '', '' and nothing), {1, first job id} for a duplicate, {2, first job id} for a
-- conflict (nothing written), {3, rule, ms until it frees or -1 for never} for an OTP the
-- guard refused (nothing written but the refusal's count and, when it blocks the prefix,
-- the block and the cancels of the prefix's OTPs still queued).
local window, field, group, now, prefix, stopped_ttl =
  ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local where = {prefix = prefix, bodies = KEYS[2], stats = KEYS[1]}
-- The streams this call has added to (stream_for and arrive done once for each).
local ready = {}

-- The job whose keys start at KEYS[k] and arguments at ARGV[a]: its reply, and where the
-- next job's keys and arguments start.
local function enqueue(k, a)
  local rec, stream = KEYS[k], KEYS[k + 1]
  local id, json, flags = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  local claim, replace, booking, guard_key, scheduled
  k = k + 2
  if flags ~= '' then
    local function take(flag)
      if string.find(flags, flag, 1, true) then
        k = k + 1
        return KEYS[k - 1]
      end
    end
    claim, replace, booking, guard_key, scheduled =
      take('k'), take('r'), take('b'), take('g'), take('s')
  end
  a = a + 3
  local fingerprint
  if claim then
    fingerprint = ARGV[a]
    a = a + 1
  end
  local ttl, due, lane, tenant = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local fields = a + 4
  if guard_key then
    fields = a + 7
  end
  local next_job = after_fields(fields)
  if claim then
    local held = redis.call('GET', claim)
    if held then
      local sep = string.find(held, ':', 1, true)
      if not sep then
        return {1, held}, k, next_job
      end
      local first = string.sub(held, 1, sep - 1)
      if string.sub(held, sep + 1) == fingerprint then
        return {1, first}, k, next_job
      end
      return {2, first}, k, next_job
    end
  end
  -- An OTP the guard holds back (its prefix's pace, guard.lua): scheduled for then (ms, Unix).
  local held = nil
  if guard_key then
    local refused, more = guard_otp(
      {prefix = guard_key, blocked = KEYS[3], refused = KEYS[4], reports = KEYS[5]}, 8,
      a + 4, id)
    if refused then
      -- A refusal that blocks the prefix cancels its OTPs still waiting to be sent (stop.lua:
      -- one being sent goes on; one sent, or long gone, is left as it is).
      if more then
        for _, older in ipairs(more) do
          stop(prefix .. 'job:' .. older, older, where, group, now, stopped_ttl, 'cancel', false)
        end
      end
      return {3, refused[1], refused[2]}, k, next_job
    end
    if more and (due == '' or more > tonumber(due)) then
      held = more
    end
  end
  if claim then
    redis.call('SET', claim, id .. ':' .. fingerprint, 'PX',
      math.max(tonumber(window), tonumber(ttl) * 1000))
  end
  local superseded = ''
  local waits_for = ''
  if replace then
    local older = redis.call('GET', replace)
    if older and older ~= id then
      local stopped = stop(prefix .. 'job:' .. older, older, where, group, now, stopped_ttl,
        'supersede', id)
      if stopped == 'stopped' then
        superseded = older
      elseif stopped == 'stopping' then
        waits_for = older
      end
    end
    redis.call('SET', replace, id, 'EX', ttl)
  end
  if booking then
    redis.call('SADD', booking, id)
    redis.call('EXPIRE', booking, ttl)
  end
  if held then
    due = held
  end
  local entry = ''
  if due ~= '' then
    -- Due later (scheduled, or held back by the guard): in the lane's scheduled set.
    record(rec, fields, ttl)
    if held then
      redis.call('HSET', rec, 'state', 'scheduled', 'send_at', guard_rfc3339(held))
    end
    redis.call('ZADD', scheduled, due, id)
    redis.call('HSET', KEYS[2], id, json)
  else
    -- Now: on its stream, the record naming its entry.
    if not ready[stream] then
      stream_for(prefix, lane, tenant, group)
    end
    entry = redis.call('XADD', stream, '*', field, json)
    if not ready[stream] then
      arrive(prefix, lane, tenant)
      ready[stream] = true
    end
    record_with(rec, fields, ttl, 'entry', entry)
  end
  if waits_for ~= '' then
    redis.call('HSET', rec, 'supersedes', waits_for)
  elseif superseded == '' and not held then
    return {0, entry}, k, next_job
  end
  return {0, entry, superseded, waits_for, held}, k, next_job
end

local out = {}
local k, a = 6, 17
for j = 1, tonumber(ARGV[1]) do
  out[j], k, a = enqueue(k, a)
end
return out
