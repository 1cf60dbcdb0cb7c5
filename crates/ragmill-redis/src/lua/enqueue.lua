-- enqueue(prefix, user, doc, size): one queued job per document.
local user, doc, size = ARGV[2], ARGV[3], ARGV[4]
local dk = doc_key(user, doc)
local parked = redis.call('HGET', dk, 'parked')
if parked then
  redis.call('DEL', job_key(parked))
  redis.call('HDEL', dk, 'parked')
  count(user, 'parked', -1)
end
local q = redis.call('HGET', dk, 'queued')
if q then
  redis.call('HSET', job_key(q), 'size', size, 'attempts', 0, 'lost', 0)
  redis.call('HDEL', job_key(q), 'error')
  redis.call('ZREM', P .. 'delayed', q)
  wait(user, q, size)
  return q
end
local jid = string.format('%d', redis.call('INCR', P .. 'seq'))
redis.call('HSET', job_key(jid), 'user', user, 'doc', doc, 'size', size, 'attempts', 0,
  'lost', 0, 'state', 'queued')
redis.call('HSET', dk, 'queued', jid)
count(user, 'queued', 1)
wait(user, jid, size)
return jid
