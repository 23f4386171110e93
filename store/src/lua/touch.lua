-- Keep this replica's holds alive: reset the idle time of the entries it still owns, so no
-- other replica takes them over while they wait here (for budget, a slot, a cool-down).
-- XCLAIM with JUSTID does not count a delivery, so poison counts stay real.
-- KEYS[1] lane stream; ARGV[1] group, ARGV[2] consumer, ARGV[3..] entry ids
-- Returns the ids this consumer no longer owns, each followed by why: 'taken' (another
-- replica holds it now) or 'gone' (nobody does: cancelled, settled, or lost with Redis's
-- data).
local lost = {}
for i = 3, #ARGV do
  local who = holder(KEYS[1], ARGV[1], ARGV[i])
  if who == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
  else
    lost[#lost + 1] = ARGV[i]
    if who then
      lost[#lost + 1] = 'taken'
    else
      lost[#lost + 1] = 'gone'
    end
  end
end
return lost
