-- job_state(prefix, user, doc) -> {'queued'} | {'leased'} | {'parked', error} | nil: the
-- newest job (a queued one is always newer than a leased one).
local dk = doc_key(ARGV[2], ARGV[3])
local h = redis.call('HMGET', dk, 'queued', 'leased', 'parked')
if h[1] then return {'queued'} end
if h[2] then return {'leased'} end
if h[3] then return {'parked', redis.call('HGET', job_key(h[3]), 'error') or ''} end
return false
