-- Shared by every queue script (prepended to each). ARGV[1] is the key prefix; every key is
-- built from it, so the scripts run on one Redis server (not a cluster: keys are not declared).
local P = ARGV[1]
local STREAM = P .. 'stream'
local GROUP = 'workers'

-- Milliseconds by the Redis server's clock: one clock for every worker, whatever theirs say.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- A waiting job's member in its user's sorted set: equal sizes order by member, so a
-- zero-padded id puts the older job first.
local function member(jid)
  return string.format('%016d', tonumber(jid))
end

local function job_key(jid) return P .. 'job:' .. jid end
local function doc_key(user, doc) return P .. 'doc:' .. user .. ':' .. doc end

-- The job's hash as a table, or nil.
local function job(jid)
  local f = redis.call('HGETALL', job_key(jid))
  if #f == 0 then return nil end
  local t = {}
  for i = 1, #f, 2 do t[f[i]] = f[i + 1] end
  return t
end

-- Counters for depth: all users and one user.
local function count(user, field, by)
  redis.call('HINCRBY', P .. 'count', field, by)
  redis.call('HINCRBY', P .. 'count:' .. user, field, by)
end

-- The user has a waiting job: give them their place in the turn order. Users never served
-- rank before every served one, in the order they were first seen.
local function make_ready(user)
  if redis.call('ZSCORE', P .. 'ready', user) then return end
  local turn = redis.call('HGET', P .. 'turn', user)
  if not turn then
    turn = redis.call('INCR', P .. 'seen') - 1000000000000
    redis.call('HSET', P .. 'turn', user, turn)
  end
  redis.call('ZADD', P .. 'ready', turn, user)
end

-- Puts job `jid` (of `user`, `size` bytes) among the user's waiting jobs.
local function wait(user, jid, size)
  redis.call('ZADD', P .. 'wait:' .. user, size, member(jid))
  make_ready(user)
end

-- Acknowledges and deletes a stream entry (the stream holds only jobs in flight).
local function drop_entry(entry)
  if entry then
    redis.call('XACK', STREAM, GROUP, entry)
    redis.call('XDEL', STREAM, entry)
  end
end

-- The leased job that `token` holds, or nil (the lease is lost).
local function held(jid, token)
  local j = job(jid)
  if not j or j.state ~= 'leased' or j.token ~= token then return nil end
  return j
end

-- Ends a leased job for good (done, or replaced by a newer job of its document).
local function end_leased(jid, j)
  drop_entry(j.entry)
  redis.call('DEL', job_key(jid))
  redis.call('HDEL', doc_key(j.user, j.doc), 'leased')
  count(j.user, 'leased', -1)
end

-- Dead-letters a leased job: out of the stream, onto the dead-letter stream, parked with `err`.
local function park(jid, j, err, lost)
  drop_entry(j.entry)
  local jk = job_key(jid)
  redis.call('HSET', jk, 'state', 'parked', 'error', err, 'lost', lost)
  redis.call('HDEL', jk, 'token', 'worker', 'entry')
  local dk = doc_key(j.user, j.doc)
  redis.call('HDEL', dk, 'leased')
  redis.call('HSET', dk, 'parked', jid)
  count(j.user, 'leased', -1)
  count(j.user, 'parked', 1)
  redis.call('XADD', P .. 'dead', 'MAXLEN', '~', 10000, '*',
    'job', jid, 'user', j.user, 'doc', j.doc, 'attempts', j.attempts, 'error', err)
end

-- Hands a leased job back uncounted: queued again at once (or dropped, if its document was
-- re-queued meanwhile: the newer job replaces it).
local function give_back(jid, j)
  local dk = doc_key(j.user, j.doc)
  if redis.call('HEXISTS', dk, 'queued') == 1 then
    end_leased(jid, j)
    return
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
end
