#!/usr/bin/env bash
# Scale-out benchmark (issue 11), on one machine with plain loopback processes: a private
# redis-server, K stand-in embedding servers (`ragmill bench stand-in`: no model, a fixed
# service time per request), a main server (`serve --queue-url … --workers 0`) and W remote
# workers (`ragmill worker --workers 1` each), against the embedded single process
# (`serve --workers 1`, no Redis) on the same stand-ins. Prints a table and writes it to
# bench-out/cluster.txt.
#
#   cargo build --release -p ragmill --offline && bench/cluster.sh
#
# Settings (environment): RAGMILL_BIN (target/release/ragmill), ENDPOINTS (3), LATENCY_MS (500),
# DOCS (45), WORDS per document (3500: about 20 chunks, one request each), WORKER_COUNTS
# ("1 2 3"), MODES ("serial concurrent"), SEQ_DOCS (15), BIG_WORDS (120000), LEASE_SECS (5),
# KEEP=1 keeps the logs.
#
# What is measured (the formulas are printed with the table):
# - throughput: N distinct documents uploaded at once; time = last ready − first accepted, on the
#   main server's clock (`updated_at` − `created_at`); docs/min and chunks/s.
# - ideal: every process runs one document at a time (`--workers 1`) and each document is one
#   embedding request (≤ 32 chunks, the Ollama batch); a serial stand-in serves one request per
#   service time L, a concurrent one any number. Ideal docs/s = min(W, K)/L (serial) or W/L
#   (concurrent): what the stand-ins allow if nothing but embedding took time.
# - per-job latency: SEQ_DOCS documents uploaded one at a time, each waited for; ready −
#   accepted on the server's clock, embedded vs cluster with one worker.
# - takeover: a worker is killed with -9 mid-embedding of a big document while a second,
#   idle worker runs; time from the kill until the document's progress moves again (the idle
#   worker claimed it) and until it is ready.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${RAGMILL_BIN:-$ROOT/target/release/ragmill}
MODEL_DIR=${RAGMILL_MODEL_DIR:-$ROOT/models/all-MiniLM-L6-v2}
ENDPOINTS=${ENDPOINTS:-3}
LATENCY_MS=${LATENCY_MS:-500}
DOCS=${DOCS:-45}
WORDS=${WORDS:-3500}
WORKER_COUNTS=${WORKER_COUNTS:-"1 2 3"}
MODES=${MODES:-"serial concurrent"}
SEQ_DOCS=${SEQ_DOCS:-15}
BIG_WORDS=${BIG_WORDS:-120000}
LEASE_SECS=${LEASE_SECS:-5}
OUT_DIR=$ROOT/bench-out
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ragmill-cluster.XXXXXX")
WORKER_KEY=rmw_bench_$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
PIDS=()
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)

cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  sleep 0.3
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ ${KEEP:-0} == 1 ]]; then echo "logs kept in $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "cluster.sh: $*" >&2; exit 1; }
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

[[ -x $BIN ]] || die "no binary at $BIN (cargo build --release -p ragmill --offline)"
[[ -f $MODEL_DIR/tokenizer.json ]] || die "no tokenizer in $MODEL_DIR (chunking needs it)"
for tool in redis-server curl jq awk; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done

# Runs a command in the background, stdout and stderr to $WORK/NAME.{out,err}; LAST_PID.
spawn() {
  local name=$1
  shift
  "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

# The first line process PID wrote to FILE, once written (the banner); dies if it exits first.
banner() {
  local pid=$1 file=$2 deadline=$((SECONDS + 60))
  until [[ -s $file ]] && [[ $(wc -l <"$file") -ge 1 ]]; do
    kill -0 "$pid" 2>/dev/null || die "$(basename "$file" .out) exited: $(tail -5 "${file%.out}.err")"
    ((SECONDS < deadline)) || die "no banner from $(basename "$file" .out)"
    sleep 0.05
  done
  head -n1 "$file"
}

free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
}

# Distinct text of WORDS random words (seeded), in paragraphs and sentences.
gen_doc() {
  awk -v seed="$1" -v words="$2" 'BEGIN {
    srand(seed)
    n = split("harbour lantern granite meadow copper thistle orbit quartz river window " \
      "garden engine market silver winter summer forest mountain valley island bridge " \
      "castle village station machine kitchen library theatre hospital factory doctor " \
      "teacher farmer captain pilot sailor painter writer singer dancer builder stone " \
      "water fire cloud storm thunder shadow mirror candle pepper honey bread cheese " \
      "apple orange lemon cherry violet purple yellow green", v, " ")
    printf "# Notes %d\n\n", seed
    for (i = 0; i < words; i++) {
      if (i % 80 == 0) printf "\n\nSection %d.%d: ", seed, i
      printf "%s%s", v[int(rand() * n) + 1], (i % 12 == 11) ? ". " : " "
    }
    print ""
  }' >"$3"
}

mkdir -p "$WORK/docs/batch" "$WORK/docs/seq" "$OUT_DIR"
for i in $(seq 1 "$DOCS"); do gen_doc "$i" "$WORDS" "$WORK/docs/batch/doc-$(printf %03d "$i").txt"; done
for i in $(seq 1 "$SEQ_DOCS"); do gen_doc $((1000 + i)) "$WORDS" "$WORK/docs/seq/seq-$(printf %03d "$i").txt"; done
gen_doc 9999 "$BIG_WORDS" "$WORK/docs/big.txt"

REDIS_PORT=$(free_port)
spawn redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
  --protected-mode no
deadline=$((SECONDS + 20))
until (exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT") 2>/dev/null; do
  ((SECONDS < deadline)) || die "redis-server did not start: $(tail -3 "$WORK/redis.out")"
  sleep 0.05
done
QUEUE_URL=redis://127.0.0.1:$REDIS_PORT/0

# K stand-ins (MODE serial|concurrent) for run TAG: URLS, SI_PIDS.
start_standins() {
  local mode=$1 tag=$2 i url serial=()
  [[ $mode == serial ]] && serial=(--serial)
  URLS="" SI_PIDS=()
  for i in $(seq 1 "$ENDPOINTS"); do
    spawn "$tag-standin$i" "$BIN" bench stand-in --bind 127.0.0.1:0 --latency-ms "$LATENCY_MS" \
      --dimensions 384 "${serial[@]}"
    SI_PIDS+=("$LAST_PID")
    url=$(banner "$LAST_PID" "$WORK/$tag-standin$i.out")
    URLS+=${URLS:+,}$url
  done
}

# Stops them; SI_REQUESTS and SI_TEXTS, summed over the stand-ins.
stop_standins() {
  local tag=$1 p
  kill -TERM "${SI_PIDS[@]}"
  for p in "${SI_PIDS[@]}"; do wait "$p" || true; done
  SI_REQUESTS=$(cat "$WORK/$tag"-standin*.out | sed -n 's/.*requests=\([0-9]*\).*/\1/p' | awk '{s += $1} END {print s + 0}')
  SI_TEXTS=$(cat "$WORK/$tag"-standin*.out | sed -n 's/.*texts=\([0-9]*\).*/\1/p' | awk '{s += $1} END {print s + 0}')
}

embed_flags() {
  EMBED=(--model-dir "$MODEL_DIR" --embed-backend ollama --embed-model stand-in
    --embed-endpoint "$URLS")
}

# The main server of run TAG with the serve arguments given: BASE, KEY, MAIN_PID.
start_main() {
  local tag=$1 line
  shift
  embed_flags
  KEY=$("$BIN" --data-dir "$WORK/$tag-main" users add bench --json | jq -r .api_key)
  spawn "$tag-main" "$BIN" --data-dir "$WORK/$tag-main" "${EMBED[@]}" serve --bind 127.0.0.1:0 \
    --lease-secs "$LEASE_SECS" "$@"
  MAIN_PID=$LAST_PID
  line=$(banner "$MAIN_PID" "$WORK/$tag-main.out")
  BASE=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' <<<"$line")
  [[ -n $BASE ]] || die "unexpected banner: $line"
}

cluster_main() { start_main "$1" --workers 0 --queue-url "$QUEUE_URL" --redis-prefix "b-$1:" --worker-key "$WORKER_KEY"; }

# Worker I of run TAG, started and ready: WORKER_PID.
start_worker() {
  local tag=$1 i=$2
  spawn "$tag-worker$i" "$BIN" --data-dir "$WORK/$tag-w$i" "${EMBED[@]}" worker --server "$BASE" \
    --workers 1 --lease-secs "$LEASE_SECS" --queue-url "$QUEUE_URL" --redis-prefix "b-$tag:" \
    --worker-key "$WORKER_KEY"
  WORKER_PID=$LAST_PID
  banner "$WORKER_PID" "$WORK/$tag-worker$i.out" >/dev/null
}

api() { curl -sS -f -H "Authorization: Bearer $KEY" "$@"; }

upload() { # files...: the accepted documents' ids, one a line
  local form=() f
  for f in "$@"; do form+=(-F "file=@$f"); done
  api "${form[@]}" "$BASE/v1/documents" | jq -r '.documents[].id'
}

# Waits until the user has N documents, all ready (dies on a failed one).
wait_all_ready() {
  local n=$1 deadline=$((SECONDS + 900)) counts
  while :; do
    counts=$(api "$BASE/v1/documents" | jq -r '[.documents[].state] |
      "\(map(select(. == "ready")) | length) \(map(select(. == "failed")) | length)"')
    [[ ${counts#* } == 0 ]] || die "a document failed: $(api "$BASE/v1/documents" | jq -c '.documents[] | select(.state == "failed")')"
    [[ ${counts% *} -ge $n ]] && return
    ((SECONDS < deadline)) || die "not all ready in time ($counts of $n)"
    sleep 0.2
  done
}

cpu_ticks() { # total user+system clock ticks of the given processes
  local p t=0 f
  for p in "$@"; do
    if f=$(cat "/proc/$p/stat" 2>/dev/null); then
      f=${f##*) }
      read -r -a a <<<"$f"
      t=$((t + a[11] + a[12]))
    fi
  done
  echo "$t"
}

# Uploads the batch set at once and waits: one row of the throughput table into ROWS.
throughput() {
  local mode=$1 setup=$2 w=$3 tag=$4 c0 c1 stats n chunks t0 t1 maxc
  local procs=("$MAIN_PID" "${SI_PIDS[@]}" "${WORKERS[@]}")
  c0=$(cpu_ticks "${procs[@]}")
  upload "$WORK"/docs/batch/*.txt >/dev/null
  wait_all_ready "$DOCS"
  c1=$(cpu_ticks "${procs[@]}")
  stats=$(api "$BASE/v1/documents" | jq -r '[.documents[] | select(.name | startswith("doc-"))] |
    "\(length) \(map(.chunks) | add) \(map(.created_at) | min) \(map(.updated_at) | max) \(map(.chunks) | max)"')
  read -r n chunks t0 t1 maxc <<<"$stats"
  ROW_STATS["$tag"]="$mode $setup $w $n $chunks $((t1 - t0)) $maxc $((c1 - c0))"
}

# Uploads the sequential set one at a time, each waited for: median/mean latency and work (ms).
# A random pause (0-1 s, the same series in every run) before each upload, so that arrivals
# fall anywhere in an idle worker's polling period rather than just after its last job.
sequential() {
  local tag=$1 f id doc lat=() work=()
  RANDOM=42
  for f in "$WORK"/docs/seq/*.txt; do
    sleep "0.$(printf %03d $((RANDOM % 1000)))"
    id=$(upload "$f")
    while :; do
      doc=$(api "$BASE/v1/documents/$id")
      case $(jq -r .state <<<"$doc") in
        ready) break ;;
        failed) die "sequential document failed: $doc" ;;
      esac
      sleep 0.02
    done
    lat+=("$(jq -r '.updated_at - .created_at' <<<"$doc")")
    work+=("$(jq -r '(.timings | add // 0) * 1000 | round' <<<"$doc")")
  done
  SEQ["$tag"]="$(printf '%s\n' "${lat[@]}" | sort -n | awk '{a[NR] = $1; s += $1} END {printf "%d %d", a[int((NR + 1) / 2)], s / NR}') $(printf '%s\n' "${work[@]}" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')"
}

# All the user's documents and their chunks, after a run: TOTALS[tag].
totals() {
  TOTALS["$1"]=$(api "$BASE/v1/documents" | jq -r '"\(.documents | length) \(.documents | map(.chunks) | add)"')
}

stop_pids() { local p; for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done; for p in "$@"; do wait "$p" 2>/dev/null || true; done; }

declare -A ROW_STATS SEQ REQS TOTALS
ORDER=()
for mode in $MODES; do
  # The embedded single process: no Redis, one worker.
  tag=$mode-embedded
  start_standins "$mode" "$tag"
  start_main "$tag" --workers 1
  WORKERS=()
  throughput "$mode" embedded 1 "$tag"
  [[ $mode == serial ]] && sequential "$tag"
  totals "$tag"
  stop_pids "$MAIN_PID"
  stop_standins "$tag"
  REQS["$tag"]="$SI_REQUESTS $SI_TEXTS 1"
  ORDER+=("$tag")

  for w in $WORKER_COUNTS; do
    tag=$mode-cluster$w
    start_standins "$mode" "$tag"
    cluster_main "$tag"
    WORKERS=()
    for i in $(seq 1 "$w"); do start_worker "$tag" "$i"; WORKERS+=("$WORKER_PID"); done
    throughput "$mode" cluster "$w" "$tag"
    [[ $mode == serial && $w == 1 ]] && sequential "$tag"
    totals "$tag"
    stop_pids "${WORKERS[@]}" "$MAIN_PID"
    stop_standins "$tag"
    REQS["$tag"]="$SI_REQUESTS $SI_TEXTS $((w + 1))"
    ORDER+=("$tag")
  done
done

# Takeover: worker 1 holds the big document; worker 2 idles; worker 1 is killed mid-embedding.
tag=takeover
start_standins serial "$tag"
cluster_main "$tag"
start_worker "$tag" 1
victim=$WORKER_PID
big_id=$(upload "$WORK/docs/big.txt")
start_worker "$tag" 2
deadline=$((SECONDS + 300))
while :; do
  doc=$(api "$BASE/v1/documents/$big_id")
  read -r stage embedded total < <(jq -r '"\(.stage) \(.progress.done) \(.progress.total)"' <<<"$doc")
  [[ $stage == embedding && $total -gt 0 && $((embedded * 5)) -ge $total ]] && break
  [[ $(jq -r .state <<<"$doc") != ready ]] || die "the big document was ready before the kill: make BIG_WORDS larger"
  ((SECONDS < deadline)) || die "the big document never reached embedding: $doc"
  sleep 0.05
done
kill -KILL "$victim"
killed=$(now_ms)
wait "$victim" 2>/dev/null || true
killed_at="$embedded/$total"
sleep 0.3 # let the dead worker's last progress settle before taking the frozen view
frozen=$(api "$BASE/v1/documents/$big_id" | jq -c '[.stage, .progress]')
moved=""
while :; do
  doc=$(api "$BASE/v1/documents/$big_id")
  if [[ -z $moved && $(jq -c '[.stage, .progress]' <<<"$doc") != "$frozen" ]]; then moved=$(now_ms); fi
  [[ $(jq -r .state <<<"$doc") == ready ]] && break
  [[ $(jq -r .state <<<"$doc") != failed ]] || die "the big document failed after the kill: $doc"
  ((SECONDS < deadline)) || die "the big document was not taken over: $doc"
  sleep 0.05
done
ready=$(now_ms)
big_chunks=$(jq -r .chunks <<<"$doc")
moved=${moved:-$ready}

# The report.
report() {
  local clk cores model
  clk=$(getconf CLK_TCK)
  cores=$(nproc)
  model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
  echo "ragmill cluster benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $cores cores ($model), load at start $LOAD0"
  echo "binary $BIN; stand-ins: K=$ENDPOINTS endpoints, L=$LATENCY_MS ms per request (Ollama batch <= 32 texts)"
  echo "documents: $DOCS distinct, $WORDS words each, uploaded at once; every process --workers 1"
  echo
  printf '%-10s %-8s %2s %6s %9s %9s %9s %8s %9s %7s %11s %5s\n' mode setup W chunks docs/min chunks/s \
    ideal/min of-ideal vs-W=1/W req/doc texts/chunk cpu
  local tag mode setup w n chunks ms maxc ticks req texts procs docs all dpm cps ideal base=""
  for tag in "${ORDER[@]}"; do
    read -r mode setup w n chunks ms maxc ticks <<<"${ROW_STATS[$tag]}"
    read -r req texts procs <<<"${REQS[$tag]}"
    read -r docs all <<<"${TOTALS[$tag]}"
    ((ms > 0)) || ms=1
    dpm=$(awk -v n="$n" -v ms="$ms" 'BEGIN {printf "%.1f", n * 60000 / ms}')
    cps=$(awk -v c="$chunks" -v ms="$ms" 'BEGIN {printf "%.0f", c * 1000 / ms}')
    ideal=$(awk -v w="$w" -v k="$ENDPOINTS" -v l="$LATENCY_MS" -v m="$mode" \
      'BEGIN {p = (m == "serial" && k < w) ? k : w; printf "%.1f", p * 60000 / l}')
    [[ $setup == cluster && $w == 1 ]] && base=$dpm
    printf '%-10s %-8s %2s %6s %9s %9s %9s %7s%% %9s %7s %11s %5s\n' "$mode" "$setup" "$w" "$chunks" "$dpm" "$cps" \
      "$ideal" "$(awk -v a="$dpm" -v b="$ideal" 'BEGIN {printf "%.0f", 100 * a / b}')" \
      "$([[ $setup == cluster && -n $base ]] && awk -v a="$dpm" -v b="$base" -v w="$w" 'BEGIN {printf "%.2f", a / b / w}' || echo -)" \
      "$(awk -v r="$req" -v k="$ENDPOINTS" -v p="$procs" -v n="$docs" 'BEGIN {printf "%.2f", (r - k * p) / n}')" \
      "$(awk -v t="$texts" -v k="$ENDPOINTS" -v p="$procs" -v c="$all" 'BEGIN {printf "%.2f", (t - k * p) / c}')" \
      "$(awk -v t="$ticks" -v c="$clk" -v ms="$ms" 'BEGIN {printf "%.2f", t / c / (ms / 1000)}')"
    [[ $maxc -le 32 ]] || echo "  (warning: a document had $maxc chunks, more than one request)"
  done
  echo
  echo "docs/min = N / (last ready - first accepted) on the main server's clock; chunks/s likewise"
  echo "ideal/min = 60 / L x min(W, K) (serial stand-ins) or x W (concurrent): one request per document,"
  echo "  one document at a time per process, nothing but embedding taking time"
  echo "vs-W=1/W = (docs/min with W workers) / (docs/min with 1) / W: 1.00 is linear scaling"
  echo "req/doc, texts/chunk = stand-in requests, texts (less one start-up probe per process and endpoint)"
  echo "  per document, chunk stored (the serial embedded and W=1 runs include the sequential documents)"
  echo "cpu = CPU seconds of the main server, workers and stand-ins during the run / its wall time"
  echo
  read -r e_med e_mean e_work <<<"${SEQ[serial-embedded]}"
  read -r c_med c_mean c_work <<<"${SEQ[serial-cluster1]}"
  echo "per-job latency, serial stand-ins, $SEQ_DOCS documents uploaded one at a time (ready - accepted):"
  printf '  embedded         median %5d ms  mean %5d ms  (stages in timings: median %d ms)\n' "$e_med" "$e_mean" "$e_work"
  printf '  cluster, 1 worker median %5d ms  mean %5d ms  (stages in timings: median %d ms)\n' "$c_med" "$c_mean" "$c_work"
  printf '  extra per job from distribution: %+d ms median, %+d ms mean\n' $((c_med - e_med)) $((c_mean - e_mean))
  echo
  echo "takeover (--lease-secs $LEASE_SECS; worker killed with -9 at $killed_at chunks embedded of a $big_chunks-chunk document,"
  echo "  a second worker idle): progress moved again $(awk -v a=$((moved - killed)) 'BEGIN {printf "%.2f", a / 1000}') s after the kill,"
  echo "  document ready $(awk -v a=$((ready - killed)) 'BEGIN {printf "%.2f", a / 1000}') s after the kill"
}
report | tee "$OUT_DIR/cluster.txt"
