-- Prelude of the scripts that run around a send (begin_send, complete, retry, dead): the
-- budget tokens the requests went out under. A token is written as one argument,
-- `charge:<W in ms>:<logs>:<member>` (`<logs>`: `otp` when it was granted to an OTP, so it
-- is in the OTPs' log too, `rsv` for an OTP's token of the reserve's pacing, else `all`),
-- or empty when the delivery holds none; the shared log and the OTPs' log are the
-- script's keys (see acquire.lua).
-- charge_all(log, otp_log, tokens): the requests just answered count from now, a time they
-- cannot have reached Interakt after (in flight, an entry was scored at its grant plus the
-- request timeout plus the margin: see acquire.lua), so each leaves the window exactly W
-- after its answer. Not `XX`: an entry that left its log meanwhile (Redis lost it, or the
-- settle came after the entry's score) is put back, so the request counts for a window
-- from its answer whatever happened in between; each log then lives at least that long
-- (the OTPs' log two windows: acquire.lua reads the window before too). One TIME and one
-- ZADD per log for all of them; the score is TIME's microseconds as a number (exact: far
-- below 2^53), never formatted.
-- refund_all(log, otp_log, tokens, state): no request was made under these tokens (the jobs
-- were cancelled, settled, taken over or lost meanwhile): their entries leave the logs, and
-- the pacing they advanced is given back (in the budget's state: `tat`, one interval W / E
-- per entry that was still in the log, or for the reserve's tokens `rtat`, W / reserve; a
-- token refunded twice moves it once), so the
-- budget is as if never asked: a flood's cancelled OTPs leave no wait behind them.
-- The scripts of one delivery (retry, dead) take its token as their last argument, with the
-- two logs as their last two keys (none without a token), so the script's own keys and
-- arguments keep their places: charge() acts on it. refund.lua gives one token back.
local function parse_token(arg)
  local window, logs, member = string.match(arg or '', '^charge:(%d+):(%a+):(.+)$')
  if member then
    return {window = tonumber(window), otp = logs ~= 'all', reserve = logs == 'rsv',
      member = member}
  end
end
local function keep_for(key, ms)
  if redis.call('PTTL', key) < ms then
    redis.call('PEXPIRE', key, ms)
  end
end
local function charge_all(log, otp_log, tokens)
  if #tokens == 0 then
    return
  end
  local t = redis.call('TIME')
  local answered = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local all, otps, window, otp_window = {}, {}, 0, 0
  for _, token in ipairs(tokens) do
    all[#all + 1] = answered
    all[#all + 1] = token.member
    window = math.max(window, token.window)
    if token.otp then
      otps[#otps + 1] = answered
      otps[#otps + 1] = token.member
      otp_window = math.max(otp_window, token.window)
    end
  end
  redis.call('ZADD', log, unpack(all))
  keep_for(log, window + 1000)
  if #otps > 0 then
    redis.call('ZADD', otp_log, unpack(otps))
    keep_for(otp_log, 2 * otp_window + 1000)
  end
end
local function refund_all(log, otp_log, tokens, state)
  if #tokens == 0 then
    return
  end
  -- The members given back, for each pacing they advanced (acquire.lua): the shared one,
  -- the OTP reserve's.
  local members, window = {{}, {}}, 0
  for _, token in ipairs(tokens) do
    local own = members[token.reserve and 2 or 1]
    own[#own + 1] = token.member
    window = math.max(window, token.window)
  end
  local removed = {0, 0}
  for i = 1, 2 do
    if #members[i] > 0 then
      removed[i] = redis.call('ZREM', log, unpack(members[i]))
      redis.call('ZREM', otp_log, unpack(members[i]))
    end
  end
  if removed[1] + removed[2] == 0 then
    return
  end
  local st = redis.call('HMGET', state, 'tat', 'effective', 'rtat', 'reserve')
  -- HINCRBY keeps 16-digit times exact; a pace moved back behind now is as good as now.
  local function give_back(field, at, n, per)
    if at and n > 0 and per and per > 0 then
      redis.call('HINCRBY', state, field, -math.floor(n * window * 1000 / per))
    end
  end
  give_back('tat', st[1], removed[1], tonumber(st[2]))
  give_back('rtat', st[3], removed[2], tonumber(st[4]))
end
local token = parse_token(ARGV[#ARGV])
local function charge()
  if token then
    charge_all(KEYS[#KEYS - 1], KEYS[#KEYS], {token})
  end
end
