-- heartbeat(prefix, jid, token) -> 1 | 0 (lost). Claiming its own entry resets its idle time,
-- so XAUTOCLAIM leaves it alone for another lease period.
local j = held(ARGV[2], ARGV[3])
if not j then return 0 end
local p = redis.call('XPENDING', STREAM, GROUP, j.entry, j.entry, 1)
if #p == 0 or p[1][2] ~= j.worker then return 0 end
redis.call('XCLAIM', STREAM, GROUP, j.worker, 0, j.entry, 'JUSTID')
return 1
