-- wrk script of bench/load.sh: POST /v1/search or multipart POST /v1/documents, one line of
-- results from done() (the statuses counted over all threads, a sample non-2xx body).
--
-- Environment: LOAD_MODE (search | upload), LOAD_KEYS (API keys, comma-separated: requests
-- rotate over them), LOAD_TAG (prefix of the uploaded names: distinct between runs),
-- UPLOAD_WORDS (words per uploaded text, 250), LOAD_DELAY_MS (a pause before each request of a
-- connection: paced clients instead of a flood; 0).
--
-- Each upload is a new file: its name and its text carry the run tag, the thread and a
-- counter, and its words come from a generator seeded with them (no two texts are equal, so
-- none is answered from the deduplication of identical bytes).

local mode = os.getenv("LOAD_MODE") or "search"
local tag = os.getenv("LOAD_TAG") or "load"
local words = tonumber(os.getenv("UPLOAD_WORDS") or "250")
local delay_ms = tonumber(os.getenv("LOAD_DELAY_MS") or "0")
if delay_ms > 0 then
  function delay()
    return delay_ms
  end
end
local keys = {}
for k in string.gmatch(os.getenv("LOAD_KEYS") or "", "[^,]+") do
  keys[#keys + 1] = k
end

local queries = {
  "what causes the tides",
  "how do I keep a sourdough starter alive",
  "fixing a punctured bicycle inner tube",
  "espresso grind size and extraction time",
  "error handling with Result and the question mark operator",
  "who invented the printing press with movable type",
  "volcans de la chaîne des Puys",
  "why are there two high tides a day",
}

local vocab = {
  "harbour", "lantern", "granite", "meadow", "copper", "thistle", "orbit", "quartz", "river",
  "window", "garden", "engine", "market", "silver", "winter", "summer", "forest", "mountain",
  "valley", "island", "bridge", "castle", "village", "station", "machine", "kitchen", "library",
  "theatre", "hospital", "factory", "doctor", "teacher", "farmer", "captain", "pilot", "sailor",
  "painter", "writer", "singer", "dancer", "builder", "stone", "water", "fire", "cloud", "storm",
  "thunder", "shadow", "mirror", "candle", "pepper", "honey", "bread", "cheese", "apple",
  "orange", "lemon", "cherry", "violet", "purple", "yellow", "green",
}

local boundary = "----ragmill-load-7d3f9a"

-- Main state: number the threads, keep them for done().
local threads = {}
function setup(thread)
  thread:set("id", #threads + 1)
  threads[#threads + 1] = thread
end

-- Thread state (globals, read back by done() through thread:get).
counts = {}
sample = ""
retry_after = ""
local n = 0

local function upload_body(name, seed)
  local x = seed % 2147483646 + 1 -- Park-Miller: exact in doubles
  local parts = { "# Load note ", name, "\n\n" }
  for i = 1, words do
    x = (x * 16807) % 2147483647
    parts[#parts + 1] = vocab[x % #vocab + 1]
    parts[#parts + 1] = (i % 12 == 0) and ". " or " "
    if i % 80 == 0 then parts[#parts + 1] = "\n\n" end
  end
  return table.concat({
    "--", boundary, "\r\n",
    'Content-Disposition: form-data; name="file"; filename="', name, '"\r\n',
    "Content-Type: text/plain\r\n\r\n",
    table.concat(parts), "\n\r\n",
    "--", boundary, "--\r\n",
  })
end

function request()
  n = n + 1
  local key = keys[(n + id) % #keys + 1]
  if mode == "search" then
    local q = queries[(n + id) % #queries + 1]
    return wrk.format("POST", "/v1/search", {
      ["Authorization"] = "Bearer " .. key,
      ["Content-Type"] = "application/json",
    }, '{"query":"' .. q .. '","top_k":5}')
  end
  local name = string.format("%s-t%d-%07d.txt", tag, id, n)
  return wrk.format("POST", "/v1/documents", {
    ["Authorization"] = "Bearer " .. key,
    ["Content-Type"] = "multipart/form-data; boundary=" .. boundary,
  }, upload_body(name, id * 1000003 + n))
end

function response(status, headers, body)
  local s = tostring(status)
  counts[s] = (counts[s] or 0) + 1
  if status >= 300 and sample == "" then
    sample = s .. " " .. string.gsub(string.sub(body or "", 1, 300), "[\r\n]", " ")
    retry_after = headers["retry-after"] or headers["Retry-After"] or ""
  end
end

function done(summary, latency, requests)
  local total, codes, smp, ra = {}, {}, "", ""
  for _, t in ipairs(threads) do
    for code, c in pairs(t:get("counts") or {}) do
      total[code] = (total[code] or 0) + c
    end
    if smp == "" then
      smp = t:get("sample") or ""
      ra = t:get("retry_after") or ""
    end
  end
  local ok, bad = 0, 0
  for code, c in pairs(total) do
    codes[#codes + 1] = code .. ":" .. c
    if tonumber(code) < 300 then ok = ok + c else bad = bad + c end
  end
  table.sort(codes)
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "LOAD requests=%d secs=%.3f rps=%.2f ok_rps=%.2f ok=%d non2xx=%d p50_ms=%.2f p99_ms=%.2f "
      .. "max_ms=%.2f sock=%d/%d/%d/%d statuses=%s retry_after=%s sample=%s\n",
    summary.requests, secs, summary.requests / secs, ok / secs, ok, bad,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    e.connect, e.read, e.write, e.timeout,
    (#codes > 0) and table.concat(codes, ",") or "-", (ra ~= "") and ra or "-",
    (smp ~= "") and smp or "-"))
end
