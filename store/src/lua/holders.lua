-- Prelude of the scripts that check many entries in one call (begin_send, complete), after
-- owned.lua: who holds each entry, as `holder` says it, mostly without an XPENDING each.
-- holders(group, streams, ids): entry i is ids[i] on streams[i]. For each stream with
-- several entries, one `XPENDING stream group <lowest ms> <highest ms> <4n + 64>` lists who
-- holds the entries of those milliseconds (a bare ms ends the range at its last id), the
-- call's n among them; an entry the reply lists is answered from it, any other (not
-- pending, alone on its stream, past the reply's count, its group missing) is asked alone
-- with `holder`. Only a listing is trusted, and nothing but `held.finish` touches a pending
-- list between the reply and the answers, so every answer is `holder`'s whatever the
-- range: the milliseconds are compared as digit strings (length, then `<`), and an id
-- written oddly or a locale's odd order only sends entries to `holder`.
-- Returns `held`: held.by(i), the consumer holding entry i (false: nobody), and
-- held.finish(i), owned.lua's `finish` of entry i, after which it is no longer listed (a
-- later check of the same entry asks `holder`, which finds nobody).
local function holders(group, streams, ids)
  local listed = {}
  if #ids > 1 then
    local lo, hi, count = {}, {}, {}
    for i = 1, #ids do
      local stream, id = streams[i], ids[i]
      local ms = stream and id and string.match(id, '^%d+')
      if ms then
        local l, h = lo[stream], hi[stream]
        if not l then
          lo[stream], hi[stream], count[stream] = ms, ms, 1
        else
          if #ms < #l or (#ms == #l and ms < l) then
            lo[stream] = ms
          elseif #ms > #h or (#ms == #h and ms > h) then
            hi[stream] = ms
          end
          count[stream] = count[stream] + 1
        end
      end
    end
    for stream, n in pairs(count) do
      if n > 1 then
        local ok, p = pcall(redis.call, 'XPENDING', stream, group, lo[stream], hi[stream],
          4 * n + 64)
        if ok then
          local owners = {}
          for j = 1, #p do
            owners[p[j][1]] = p[j][2]
          end
          listed[stream] = owners
        end
      end
    end
  end
  local held = {}
  function held.by(i)
    local owners = listed[streams[i]]
    local who = owners and owners[ids[i]]
    if who then
      return who
    end
    return holder(streams[i], group, ids[i])
  end
  function held.finish(i)
    finish(streams[i], group, ids[i])
    local owners = listed[streams[i]]
    if owners then
      owners[ids[i]] = nil
    end
  end
  return held
end
