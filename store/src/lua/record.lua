-- Prelude: record fields on a job's record and keep it for ttl
-- seconds. The fields are the script's arguments from ARGV[at]: their count, then each name
-- and value (`Fields` in store/src/record.rs); a count of 0 records nothing. Returns the
-- index of the argument after them; after_fields(at) returns that index without recording.
local function record(key, at, ttl, kept)
  local n = tonumber(ARGV[at])
  if n > 0 then
    redis.call('HSET', key, unpack(ARGV, at + 1, at + 2 * n))
    if not kept or redis.call('PTTL', key) < ttl * 1000 then
      redis.call('EXPIRE', key, ttl)
    end
  end
  return at + 2 * n + 1
end
-- record_with(key, at, ttl, name, value): the same, with one more field (`name`) first.
local function record_with(key, at, ttl, name, value)
  local n = tonumber(ARGV[at])
  redis.call('HSET', key, name, value, unpack(ARGV, at + 1, at + 2 * n))
  redis.call('EXPIRE', key, ttl)
  return at + 2 * n + 1
end
-- record_kept(key, at, ttl): the same, but the expiry is pushed out only when the key would
-- go within ttl seconds (a `PTTL`, which Redis answers for a fraction of what an `EXPIRE`
-- costs it: an `EXPIRE` is rewritten as a `PEXPIREAT` for replication). For the send's
-- settle: an enqueued record is kept RECORD_TTL_SLACK_SECS longer than ttl (keys.rs), so a
-- job sent within that time keeps its expiry, still ttl seconds or more after the send.
local function record_kept(key, at, ttl)
  return record(key, at, ttl, true)
end
local function after_fields(at)
  return at + 2 * tonumber(ARGV[at]) + 1
end
