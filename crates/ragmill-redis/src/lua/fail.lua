-- fail(prefix, jid, token, error, max_attempts, backoff_ms) -> {1, next attempt} | {0, 0}
-- (parked) | {-1, 0} (lost)
local jid, err, max, backoff = ARGV[2], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
local j = held(jid, ARGV[3])
if not j then return {-1, 0} end
local dk = doc_key(j.user, j.doc)
local q = redis.call('HGET', dk, 'queued')
if q then
  end_leased(jid, j)
  return {1, tonumber(redis.call('HGET', job_key(q), 'attempts') or 0) + 1}
end
local attempts = tonumber(j.attempts)
if attempts >= max then
  park(jid, j, err, tonumber(j.lost or 0))
  return {0, 0}
end
local exp = math.min(math.max(attempts - 1, 0), 30)
drop_entry(j.entry)
redis.call('HSET', job_key(jid), 'state', 'queued', 'error', err)
redis.call('HDEL', job_key(jid), 'token', 'worker', 'entry')
redis.call('HDEL', dk, 'leased')
redis.call('HSET', dk, 'queued', jid)
count(j.user, 'leased', -1)
count(j.user, 'queued', 1)
redis.call('ZADD', P .. 'delayed', now_ms() + backoff * 2 ^ exp, jid)
return {1, attempts + 1}
