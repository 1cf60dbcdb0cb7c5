-- release_held(prefix, worker) -> how many jobs were handed back: every job pending for the
-- consumer `worker` (known to be gone), uncounted; then the consumer is deleted.
local worker = ARGV[2]
if redis.call('EXISTS', STREAM) == 0 then return 0 end
local n = 0
for _, p in ipairs(redis.call('XPENDING', STREAM, GROUP, '-', '+', 10000, worker)) do
  local entry, jid = p[1], nil
  local e = redis.call('XRANGE', STREAM, entry, entry)[1]
  if e then
    for i = 1, #e[2], 2 do if e[2][i] == 'job' then jid = e[2][i + 1] end end
  end
  local j = jid and job(jid)
  if j and j.state == 'leased' and j.entry == entry then
    give_back(jid, j)
    n = n + 1
  else
    drop_entry(entry)
  end
end
redis.call('XGROUP', 'DELCONSUMER', STREAM, GROUP, worker)
return n
