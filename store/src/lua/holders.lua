-- Prelude of the scripts that check many entries in one call (begin_send, complete), after
-- owned.lua: who holds each entry, as `holder` says it, mostly without an XPENDING each.
-- holders(group, consumer, streams, ids) (entry i is ids[i] on streams[i]): for each stream
-- with at least BATCHED of the entries, one `XPENDING stream group <lowest ms> <highest ms>
-- <4n + 64> consumer` lists the entries `consumer` holds in those milliseconds (a bare ms
-- ends the range at its last id), the call's n among them. Returns the listings, by stream.
-- held_by(listed, stream, group, id): who holds entry `id` (false: nobody): `consumer` when
-- the listing lists it; any other entry (held by another consumer or nobody, on a stream
-- with fewer entries, past the reply's count, its group missing) is asked alone with
-- `holder`. Only a listing is trusted, and nothing but finish_held touches a pending list
-- between the reply and the answers, so every answer is `holder`'s whatever the range: the
-- milliseconds are compared as digit strings (length, then `<`), and an id written oddly or
-- a locale's odd order only sends entries to `holder`.
-- finish_held(listed, stream, group, id): owned.lua's `finish`, and the entry leaves the
-- listing (a later check of the same entry asks `holder`, which finds nobody).
-- Fewer than BATCHED entries of a stream are asked one by one: measured in Redis 7.0, a
-- range pays from about four (its reply costs about a third of an XPENDING per entry
-- listed, the listing's bookkeeping about as much again).
local BATCHED = 4
local function holders(group, consumer, streams, ids)
  local listed, count = {}, {}
  local batched = false
  for i = 1, #ids do
    local stream = streams[i]
    if stream then
      local n = (count[stream] or 0) + 1
      count[stream] = n
      batched = batched or n >= BATCHED
    end
  end
  if not batched then
    return listed
  end
  local lo, hi = {}, {}
  for i = 1, #ids do
    local stream, id = streams[i], ids[i]
    local ms = stream and count[stream] >= BATCHED and id and string.match(id, '^%d+')
    if ms then
      local l, h = lo[stream], hi[stream]
      if not l then
        lo[stream], hi[stream] = ms, ms
      elseif #ms < #l or (#ms == #l and ms < l) then
        lo[stream] = ms
      elseif #ms > #h or (#ms == #h and ms > h) then
        hi[stream] = ms
      end
    end
  end
  for stream, l in pairs(lo) do
    local ok, p = pcall(redis.call, 'XPENDING', stream, group, l, hi[stream],
      4 * count[stream] + 64, consumer)
    if ok then
      local owners = {}
      for j = 1, #p do
        owners[p[j][1]] = p[j][2]
      end
      listed[stream] = owners
    end
  end
  return listed
end
local function held_by(listed, stream, group, id)
  local owners = listed[stream]
  return owners and owners[id] or holder(stream, group, id)
end
local function finish_held(listed, stream, group, id)
  finish(stream, group, id)
  local owners = listed[stream]
  if owners then
    owners[id] = nil
  end
end
