-- Prelude of the settle scripts: record fields on a job's timeline (or a message index
-- entry) and keep it for ttl seconds. `json` is an object of string fields; `{}` records
-- nothing.
local function record(key, json, ttl)
  local fields = {}
  for name, value in pairs(cjson.decode(json)) do
    fields[#fields + 1] = name
    fields[#fields + 1] = value
  end
  if #fields > 0 then
    redis.call('HSET', key, unpack(fields))
    redis.call('EXPIRE', key, ttl)
  end
end
