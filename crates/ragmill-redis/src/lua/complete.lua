-- complete(prefix, jid, token) -> 1 | 0 (lost). The only place a job is acknowledged as done.
local j = held(ARGV[2], ARGV[3])
if not j then return 0 end
end_leased(ARGV[2], j)
return 1
