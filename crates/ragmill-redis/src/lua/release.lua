-- release(prefix, jid, token) -> 1 | 0 (lost): back to the queue at once, the attempt not
-- counted.
local jid = ARGV[2]
local j = held(jid, ARGV[3])
if not j then return 0 end
local dk = doc_key(j.user, j.doc)
if redis.call('HEXISTS', dk, 'queued') == 1 then
  end_leased(jid, j)
  return 1
end
drop_entry(j.entry)
redis.call('HSET', job_key(jid), 'state', 'queued',
  'attempts', math.max(tonumber(j.attempts) - 1, 0))
redis.call('HDEL', job_key(jid), 'token', 'worker', 'entry')
redis.call('HDEL', dk, 'leased')
redis.call('HSET', dk, 'queued', jid)
count(j.user, 'leased', -1)
count(j.user, 'queued', 1)
wait(j.user, jid, j.size)
return 1
