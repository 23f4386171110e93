-- The send path's last check, right before the HTTP request (after every wait: for a token,
-- a slot, a fresh grant). It and the producer's cancel.lua are the one place that decides
-- whether a job may still be sent: both read and write the job's record atomically, so a
-- cancel that ran first stops the send, and one that runs after finds `sending` and changes
-- nothing.
-- In order: the entry must still be this replica's (another may have taken it over while
-- this one was paused); a job already sent (its marker, from an earlier delivery) is not
-- sent again; a cancelled job is dropped (acknowledged and deleted here); a job past its
-- deadline is not sent (the caller dead-letters it as expired); else the record says
-- `sending` and the caller sends.
-- KEYS[1] lane stream, KEYS[2] the job's record, KEYS[3] the job's sent marker
-- ARGV[1] group, ARGV[2] entry id, ARGV[3] consumer, ARGV[4] the job's deadline (ms, Unix)
-- or ''
-- Returns {0, ''} send; {1, message id} already sent; {2, ''} cancelled (dropped);
-- {3, ''} not ours (nothing changed); {4, ''} expired.
-- (`owned` comes from owned.lua, in front.)
if not owned(KEYS[1], ARGV[1], ARGV[2], ARGV[3]) then
  return {3, ''}
end
local sent = redis.call('GET', KEYS[3])
if sent then
  return {1, sent}
end
local state = redis.call('HGET', KEYS[2], 'state')
if state == 'cancelled' then
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
  redis.call('XDEL', KEYS[1], ARGV[2])
  return {2, ''}
end
if ARGV[4] ~= '' then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if now > tonumber(ARGV[4]) then
    return {4, ''}
  end
end
if state then
  redis.call('HSET', KEYS[2], 'state', 'sending')
end
return {0, ''}
