-- The send path's last check, right before the HTTP request (after every wait: for a token,
-- a slot, a fresh grant), for one job or several (the checks a replica's sends asked for
-- together run in one call, each as if alone). It and stop.lua are the one place that
-- decides whether a job may still be sent: both read and write the job's record atomically,
-- so a stop that ran first stops the send, and one that runs after finds `sending`.
-- In order: the entry must still be this replica's (another may have taken it over while
-- this one was paused; or it is gone: cancelled, settled, lost with Redis's data); a job
-- already sent (its marker, from an earlier delivery) is not sent again; a stop noted while
-- an earlier attempt was sending ends it now; a job in a state the lifecycle does not send
-- from is dropped; a job past its deadline is not sent (the caller dead-letters it as
-- expired); a job that supersedes one still being sent waits (the caller defers it); else
-- the record says `sending` and the caller sends. Whenever it does not send, the token the
-- send would have spent goes back to the budget (token.lua).
-- KEYS[1] stats, KEYS[2] the shared log, KEYS[3] the OTPs' log (token.lua), KEYS[4] the
-- budget's state (acquire.lua: the pacing a refund gives back), then for each job three:
-- its lane stream, its record, its sent marker
-- ARGV[1] group, ARGV[2] consumer, ARGV[3] the records' ttl (s), ARGV[4] the prefix of job
-- records, ARGV[5] how many jobs, then for each five: entry id, job id, its deadline (ms,
-- Unix) or '', lane, its token (token.lua; '' without one)
-- Returns, for each job in order, two values: 0, 'sending' send (its record says so now),
-- or 0, '' send (it has no record: its settle writes it whole); 1, message id already sent (entry
-- finished); 2, state stopped or not to be sent (entry finished); 3, state another replica
-- holds it (nothing changed); 4, '' expired (nothing changed); 5, state gone (nothing
-- changed); 6, older job id waits for the older job still being sent (nothing changed).
local group, consumer, ttl, prefix = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local out, refunds = {}, {}
local now
-- Who holds the entries, asked for all at once (holders.lua); an entry is finished through
-- its listing (finish_held), so a later check of the same entry finds nobody holds it.
local streams, entries = {}, {}
for i = 1, tonumber(ARGV[5]) do
  streams[i], entries[i] = KEYS[2 + 3 * i], ARGV[1 + 5 * i]
end
local listed = holders(group, consumer, streams, entries)
local function check(stream, rec, marker, entry, id, deadline, lane)
  local who = held_by(listed, stream, group, entry)
  local st = redis.call('HMGET', rec, 'state', 'stop', 'supersedes')
  local state = st[1]
  if who ~= consumer then
    if who then
      return 3, state or ''
    end
    return 5, state or ''
  end
  -- Its marker is read only when the record could be of a sent job: complete.lua writes the
  -- marker and `sent` together and no step leaves `sent`, so a record that says a send may
  -- begin is of a job not sent.
  if not state or not may('begin_send', state) then
    local sent = redis.call('GET', marker)
    if sent then
      finish_held(listed, stream, group, entry)
      return 1, sent
    end
  end
  if st[2] then
    take_stop(rec, id, st[2], ttl, KEYS[1], lane)
    finish_held(listed, stream, group, entry)
    return 2, st[2]
  end
  if not may('begin_send', state) then
    finish_held(listed, stream, group, entry)
    return 2, state
  end
  if deadline ~= '' then
    now = now or now_ms()
    if now > tonumber(deadline) then
      return 4, ''
    end
  end
  if st[3] then
    if redis.call('HGET', prefix .. st[3], 'state') == 'sending' then
      return 6, st[3]
    end
    redis.call('HDEL', rec, 'supersedes')
  end
  if state then
    redis.call('HSET', rec, 'state', 'sending')
    return 0, 'sending'
  end
  return 0, ''
end
local at = 6
for i = 0, tonumber(ARGV[5]) - 1 do
  local code, text = check(KEYS[5 + 3 * i], KEYS[6 + 3 * i], KEYS[7 + 3 * i], ARGV[at],
    ARGV[at + 1], ARGV[at + 2], ARGV[at + 3])
  local token = parse_token(ARGV[at + 4])
  if code ~= 0 and token then
    refunds[#refunds + 1] = token
  end
  out[#out + 1] = code
  out[#out + 1] = text
  at = at + 5
end
refund_all(KEYS[2], KEYS[3], refunds, KEYS[4])
return out
