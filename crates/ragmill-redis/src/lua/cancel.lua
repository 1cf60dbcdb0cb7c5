-- cancel(prefix, user, doc) -> how many jobs were dropped (queued and parked; a leased one is
-- left to its worker).
local user, doc = ARGV[2], ARGV[3]
local dk = doc_key(user, doc)
local n = 0
local q = redis.call('HGET', dk, 'queued')
if q then
  local wk = P .. 'wait:' .. user
  redis.call('ZREM', wk, member(q))
  redis.call('ZREM', P .. 'delayed', q)
  if redis.call('ZCARD', wk) == 0 then redis.call('ZREM', P .. 'ready', user) end
  redis.call('DEL', job_key(q))
  redis.call('HDEL', dk, 'queued')
  count(user, 'queued', -1)
  n = n + 1
end
local pk = redis.call('HGET', dk, 'parked')
if pk then
  redis.call('DEL', job_key(pk))
  redis.call('HDEL', dk, 'parked')
  count(user, 'parked', -1)
  n = n + 1
end
return n
