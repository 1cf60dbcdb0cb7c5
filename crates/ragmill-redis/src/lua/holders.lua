-- holders(prefix) -> the consumers (workers) with pending entries: the lease holders.
if redis.call('EXISTS', STREAM) == 0 then return {} end
local names = {}
for _, c in ipairs(redis.call('XPENDING', STREAM, GROUP)[4] or {}) do
  table.insert(names, c[1])
end
return names
