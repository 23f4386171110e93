-- The send path's last check, right before the HTTP request (after every wait: for a token,
-- a slot, a fresh grant). It and stop.lua are the one place that decides whether a job may
-- still be sent: both read and write the job's record atomically, so a stop that ran first
-- stops the send, and one that runs after finds `sending`.
-- In order: the entry must still be this replica's (another may have taken it over while
-- this one was paused; or it is gone: cancelled, settled, lost with Redis's data); a job
-- already sent (its marker, from an earlier delivery) is not sent again; a stop noted while
-- an earlier attempt was sending ends it now; a job in a state the lifecycle does not send
-- from is dropped; a job past its deadline is not sent (the caller dead-letters it as
-- expired); a job that supersedes one still being sent waits (the caller defers it); else
-- the record says `sending` and the caller sends. Whenever it does not send, the token the
-- send would have spent goes back to the budget (token.lua).
-- KEYS[1] lane stream, KEYS[2] the job's record, KEYS[3] the job's sent marker, KEYS[4]
-- stats, then the token's logs (token.lua)
-- ARGV[1] group, ARGV[2] entry id, ARGV[3] consumer, ARGV[4] job id, ARGV[5] the job's
-- deadline (ms, Unix) or '', ARGV[6] the record's ttl (s), ARGV[7] the prefix of job
-- records, ARGV[8] lane, then the token
-- Returns {0, ''} send; {1, message id} already sent (entry finished); {2, state} stopped or
-- not to be sent (entry finished); {3, state} another replica holds it (nothing changed);
-- {4, ''} expired (nothing changed); {5, state} gone (nothing changed); {6, older job id}
-- waits for the older job still being sent (nothing changed).
local who = holder(KEYS[1], ARGV[1], ARGV[2])
local st = redis.call('HMGET', KEYS[2], 'state', 'stop', 'supersedes')
local state = st[1]
if who ~= ARGV[3] then
  refund()
  if who then
    return {3, state or ''}
  end
  return {5, state or ''}
end
local sent = redis.call('GET', KEYS[3])
if sent then
  refund()
  finish(KEYS[1], ARGV[1], ARGV[2])
  return {1, sent}
end
if st[2] then
  refund()
  take_stop(KEYS[2], ARGV[4], st[2], ARGV[6], KEYS[4], ARGV[8])
  finish(KEYS[1], ARGV[1], ARGV[2])
  return {2, st[2]}
end
if not may('begin_send', state) then
  refund()
  finish(KEYS[1], ARGV[1], ARGV[2])
  return {2, state}
end
if ARGV[5] ~= '' and now_ms() > tonumber(ARGV[5]) then
  refund()
  return {4, ''}
end
if st[3] then
  if redis.call('HGET', ARGV[7] .. st[3], 'state') == 'sending' then
    refund()
    return {6, st[3]}
  end
  redis.call('HDEL', KEYS[2], 'supersedes')
end
if state then
  redis.call('HSET', KEYS[2], 'state', 'sending')
end
return {0, ''}
