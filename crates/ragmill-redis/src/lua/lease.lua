-- lease(prefix, worker, lease_ms, max_attempts, max_lost) -> {jid, user, doc, attempt, token} | nil
local worker, lease_ms = ARGV[2], tonumber(ARGV[3])
local max_lost = tonumber(ARGV[5])
local now = now_ms()
if redis.call('EXISTS', STREAM) == 0 then
  redis.call('XGROUP', 'CREATE', STREAM, GROUP, '$', 'MKSTREAM')
end

-- Hands job `jid` (whose stream entry this worker now owns) to the worker.
local function grant(jid, j, entry)
  local token = entry .. '.' .. redis.call('INCR', P .. 'tok')
  local attempt = tonumber(j.attempts) + 1
  redis.call('HSET', job_key(jid), 'state', 'leased', 'attempts', attempt, 'token', token,
    'worker', worker, 'entry', entry)
  local served = redis.call('INCR', P .. 'served')
  redis.call('HSET', P .. 'turn', j.user, served)
  redis.call('ZADD', P .. 'ready', 'XX', served, j.user)
  return {jid, j.user, j.doc, attempt, token}
end

-- 1. Retries whose backoff is over wait again.
for _, jid in ipairs(redis.call('ZRANGEBYSCORE', P .. 'delayed', '-inf', now, 'LIMIT', 0, 100)) do
  redis.call('ZREM', P .. 'delayed', jid)
  local j = job(jid)
  if j then wait(j.user, jid, j.size) end
end

-- 2. Entries idle longer than a lease (their worker stopped heartbeating) are claimed, one at a
-- time so none is claimed without being handed out. Each claim counts as a lost lease; the
-- job is dead-lettered once its leases were lost `max_lost` times (a poison document).
local cursor = '0-0'
repeat
  local r = redis.call('XAUTOCLAIM', STREAM, GROUP, worker, lease_ms, cursor, 'COUNT', 1)
  cursor = r[1]
  for _, e in ipairs(r[2]) do
    if type(e) == 'table' then
      local entry, fields, jid = e[1], e[2], nil
      for i = 1, #fields, 2 do if fields[i] == 'job' then jid = fields[i + 1] end end
      local j = jid and job(jid)
      if not j or j.state ~= 'leased' or j.entry ~= entry then
        drop_entry(entry)
      else
        local lost = tonumber(j.lost or 0) + 1
        if redis.call('HEXISTS', doc_key(j.user, j.doc), 'queued') == 1 then
          end_leased(jid, j)
        elseif lost >= max_lost then
          park(jid, j, 'worker lost the job ' .. lost .. ' times', lost)
        else
          redis.call('HSET', job_key(jid), 'lost', lost)
          return grant(jid, j, entry)
        end
      end
    end
  end
until cursor == '0-0'

-- 3. Users in turn (served longest ago first); the first with a job whose document is not
-- being processed gets its smallest (then oldest) one, delivered through the stream.
-- Both walks go a page at a time: a user is skipped only while all their waiting documents
-- are being processed, so the walk is short however many users wait.
local function pick(user)
  local wk = P .. 'wait:' .. user
  local start = 0
  while true do
    local members = redis.call('ZRANGE', wk, start, start + 31)
    if #members == 0 then break end
    for _, m in ipairs(members) do
      local jid = string.format('%d', tonumber(m))
      local j = job(jid)
      local dk = j and doc_key(j.user, j.doc)
      if j and redis.call('HEXISTS', dk, 'leased') == 0 then
        redis.call('ZREM', wk, m)
        if redis.call('ZCARD', wk) == 0 then redis.call('ZREM', P .. 'ready', user) end
        redis.call('HDEL', dk, 'queued')
        redis.call('HSET', dk, 'leased', jid)
        count(j.user, 'queued', -1)
        count(j.user, 'leased', 1)
        local entry = redis.call('XADD', STREAM, '*', 'job', jid)
        -- Read it back through the group, so the entry is pending for this worker. Anything
        -- undelivered before it is a leftover of no job: drop it.
        for _ = 1, 100 do
          local r = redis.call('XREADGROUP', 'GROUP', GROUP, worker, 'COUNT', 1,
            'STREAMS', STREAM, '>')
          local got = r and r[1][2][1] and r[1][2][1][1]
          if not got or got == entry then break end
          drop_entry(got)
        end
        return grant(jid, j, entry)
      end
    end
    start = start + 32
  end
  if redis.call('ZCARD', wk) == 0 then redis.call('ZREM', P .. 'ready', user) end
  return nil
end

local from = 0
while true do
  local users = redis.call('ZRANGE', P .. 'ready', from, from + 31)
  if #users == 0 then break end
  local emptied = 0
  for _, user in ipairs(users) do
    local lease = pick(user)
    if lease then return lease end
    if not redis.call('ZSCORE', P .. 'ready', user) then emptied = emptied + 1 end
  end
  from = from + 32 - emptied
end
return false
