-- release(prefix, jid, token) -> 1 | 0 (lost): back to the queue at once, the attempt not
-- counted.
local j = held(ARGV[2], ARGV[3])
if not j then return 0 end
give_back(ARGV[2], j)
return 1
