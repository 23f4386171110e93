-- Sends that succeeded, one or many (the sends of a replica that were answered together are
-- settled in one call): record each as sent (marker, record, message index), then
-- acknowledge and delete its entry, atomically, so a redelivered copy finds the marker and
-- is not sent again, and a webhook about the message finds its job.
-- A send cannot be undone: it is recorded whatever the record said meanwhile, and even when
-- the entry is no longer this replica's (it was taken over while this one was sending; the
-- new holder must find the marker). It is recorded and counted once: a settle that runs
-- again (its answer was lost, Redis failed over) finds the marker and changes nothing but
-- the acknowledgement. Only acknowledging is left to the owner.
-- KEYS[1] stats hash, KEYS[2] the shared log, KEYS[3] the OTPs' log (token.lua), then for
-- each send four: its lane stream, its job's sent marker, its job's record, its message
-- index entry
-- ARGV[1] group, ARGV[2] consumer, ARGV[3] marker and record ttl (s), ARGV[4] how many
-- sends, then for each: entry id, job id, Interakt message id, stats field, its token
-- (token.lua; '' without one), '1' when the job has an idempotency key (only then can its
-- record name a claim to follow), the record's fields (count, names and values; see
-- record.lua: all of them, or only what the send changed when begin_send found the record),
-- then the message index entry ('<job id> <lane>', one string with its expiry: see
-- store/src/message_index.rs; '' for none)
-- Returns, for each send in order, ours, new: ours 1 when settled, 0 when recorded but the
-- entry was not ours to acknowledge; new 1 when this call recorded the send, 0 when it was
-- recorded before.
local group, consumer, ttl = ARGV[1], ARGV[2], ARGV[3]
local out, counts, tokens, acks = {}, {}, {}, {}
local streams, entries = {}, {}
local at = 5
for i = 0, tonumber(ARGV[4]) - 1 do
  local marker, rec = KEYS[5 + 4 * i], KEYS[6 + 4 * i]
  local entry, id, message, stat, member = ARGV[at], ARGV[at + 1], ARGV[at + 2], ARGV[at + 3], ARGV[at + 4]
  local keyed = ARGV[at + 5] == '1'
  streams[i + 1], entries[i + 1] = KEYS[4 + 4 * i], entry
  at = at + 6
  local token = parse_token(member)
  if token then
    tokens[#tokens + 1] = token
  end
  local new = 0
  if redis.call('SET', marker, message, 'NX', 'EX', ttl) then
    new = 1
    at = record_kept(rec, at, ttl)
    local index = ARGV[at]
    at = at + 1
    if index ~= '' then
      redis.call('SET', KEYS[7 + 4 * i], index, 'EX', ttl)
    end
    redis.call('HDEL', rec, 'stop', 'entry', 'delayed', 'retry_at', 'supersedes')
    if keyed then
      follow_claim(rec, id, 'sent', ttl)
    end
    counts[stat] = (counts[stat] or 0) + 1
  else
    at = after_fields(at) + 1
  end
  out[2 * i + 1] = 0
  out[2 * i + 2] = new
end
-- Then whose each entry is, asked for all at once (holders.lua; recording touches no
-- stream): this replica's are acknowledged, after every send is recorded.
local listed = holders(group, consumer, streams, entries)
for i = 1, #entries do
  local stream = streams[i]
  if held_by(listed, stream, group, entries[i]) == consumer then
    out[2 * i - 1] = 1
    local ids = acks[stream]
    if not ids then
      ids = {}
      acks[stream] = ids
    end
    ids[#ids + 1] = entries[i]
  end
end
charge_all(KEYS[2], KEYS[3], tokens)
for stat, n in pairs(counts) do
  redis.call('HINCRBY', KEYS[1], stat, n)
end
for stream, ids in pairs(acks) do
  finish_all(stream, group, ids)
end
return out
