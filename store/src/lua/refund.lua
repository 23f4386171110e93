-- Gives one budget token back (token.lua's refund_all): no request went out under it (its
-- grant went stale before the request could start, or the tokens granted together outnumbered
-- the jobs). Its entries leave both logs and the pacing it advanced is given back.
-- KEYS[1] the shared log, KEYS[2] the OTPs' log, KEYS[3] the budget's state (acquire.lua)
-- ARGV[1] the token (token.lua's `charge:<W in ms>:<logs>:<member>`)
local given = parse_token(ARGV[1])
if given then
  refund_all(KEYS[1], KEYS[2], {given}, KEYS[3])
end
