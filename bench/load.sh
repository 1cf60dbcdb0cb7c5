#!/usr/bin/env bash
# Load figures (issue 12): `wrk` against `ragmill serve` on loopback (127.0.0.1 only), with the
# per-key rate limit off. Prints a table and writes it to bench-out/load.txt.
#
#   cargo build --release -p ragmill --offline && bench/load.sh
#
# Needs wrk (Debian: apt-get install wrk), curl, jq and awk; installs nothing.
#
# Phases, each on a fresh copy of one data directory (users created and samples/ ingested
# once, before any server runs):
# 1. search: POST /v1/search (bench/load.lua rotates 8 queries, top_k 5) at SEARCH_CONNS
#    connections, DURATION s each. "Holds" = the fewest connections whose throughput is within
#    10% of the best level's; beyond it throughput is flat and latency grows. A curl sent during
#    the last level shows what one more client gets then.
# 2. upload: multipart POST /v1/documents, each request a new UPLOAD_WORDS-word .txt, at
#    UPLOAD_CONNS connections (--max-pending high). An upload is answered 202 once durable and
#    queued; the queue (queued + processing, from /metrics) after each level shows how far
#    acceptance runs ahead of the WORKERS workers.
# 3. cap: the same at CAP_CONNS connections with --max-pending CAP: the share answered 429
#    too_many_pending, its JSON body and Retry-After (wrk's sample and a curl during the run).
# 4. mixed: MIXED_USERS users uploading (one connection each) while MIXED_SEARCH_CONNS
#    connections search for MIXED_DURATION s, beside search alone at the same connections on
#    the same server just before (the probe of issue 12: 20 users uploading while 10 threads
#    search for 60 s). Twice: the uploaders paced (MIXED_DELAY_MS between two uploads of a
#    user), then flooding (no pause: the queue grows as in phase 2).
#
# wrk runs on the same machine as the server and takes CPU from it; the machine and its load
# average are printed with the table.
#
# Settings (environment): RAGMILL_BIN (target/release/ragmill), RAGMILL_MODEL_DIR
# (models/all-MiniLM-L6-v2), WORKERS (2), DURATION (10), SEARCH_CONNS ("1 2 4 8 16 32 64 128"),
# UPLOAD_CONNS ("1 2 4 8 16"), UPLOAD_WORDS (250), CAP (200), CAP_CONNS (8), MIXED_USERS (5),
# MIXED_SEARCH_CONNS (10), MIXED_DURATION (30), MIXED_DELAY_MS (500), WRK_TIMEOUT (10s), KEEP=1 keeps the logs.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${RAGMILL_BIN:-$ROOT/target/release/ragmill}
MODEL_DIR=${RAGMILL_MODEL_DIR:-$ROOT/models/all-MiniLM-L6-v2}
WORKERS=${WORKERS:-2}
DURATION=${DURATION:-10}
SEARCH_CONNS=${SEARCH_CONNS:-"1 2 4 8 16 32 64 128"}
UPLOAD_CONNS=${UPLOAD_CONNS:-"1 2 4 8 16"}
UPLOAD_WORDS=${UPLOAD_WORDS:-250}
CAP=${CAP:-200}
CAP_CONNS=${CAP_CONNS:-8}
MIXED_USERS=${MIXED_USERS:-5}
MIXED_SEARCH_CONNS=${MIXED_SEARCH_CONNS:-10}
MIXED_DURATION=${MIXED_DURATION:-30}
MIXED_DELAY_MS=${MIXED_DELAY_MS:-500}
WRK_TIMEOUT=${WRK_TIMEOUT:-10s}
LUA=$ROOT/bench/load.lua
OUT_DIR=$ROOT/bench-out
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ragmill-load.XXXXXX")
PIDS=()
SEARCH_SAMPLE=""
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

die() { echo "load.sh: $*" >&2; exit 1; }
log() { echo "load.sh: $*" >&2; }

[[ -x $BIN ]] || die "no binary at $BIN (cargo build --release -p ragmill --offline)"
[[ -f $MODEL_DIR/tokenizer.json ]] || die "no model in $MODEL_DIR (set RAGMILL_MODEL_DIR)"
[[ -f $LUA ]] || die "no $LUA"
command -v wrk >/dev/null ||
  die "wrk is not installed (this script installs nothing): apt-get install wrk on Debian/Ubuntu"
for tool in curl jq awk; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done

rm_() { "$BIN" --data-dir "$1" --model-dir "$MODEL_DIR" "${@:2}"; }

# --- one data directory, copied for each phase -------------------------------------------------
TEMPLATE=$WORK/template
key_of() { rm_ "$TEMPLATE" users add "$1" --json | jq -r .api_key; }
SEARCH_KEY=$(key_of searcher)
UPLOAD_KEY=$(key_of uploader)
MIXED_KEYS=""
for i in $(seq 1 "$MIXED_USERS"); do MIXED_KEYS+=${MIXED_KEYS:+,}$(key_of "user$i"); done
log "ingesting samples/ for the searcher"
rm_ "$TEMPLATE" ingest --user searcher "$ROOT/samples" >"$WORK/ingest.out" 2>&1 ||
  die "ingest failed: $(tail -5 "$WORK/ingest.out")"
SAMPLE_CHUNKS=$(sed -n 's/.*; \([0-9]*\) chunks.*/\1/p' "$WORK/ingest.out")

# Starts a server on a copy of the template with extra serve arguments: BASE, SERVER_PID.
start_server() {
  local tag=$1 line deadline=$((SECONDS + 120))
  shift
  cp -a "$TEMPLATE" "$WORK/$tag"
  rm_ "$WORK/$tag" serve --bind 127.0.0.1:0 --workers "$WORKERS" --rate-limit 0 "$@" \
    >"$WORK/$tag.out" 2>"$WORK/$tag.err" &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  until [[ -s $WORK/$tag.out ]]; do
    kill -0 "$SERVER_PID" 2>/dev/null || die "server $tag exited: $(tail -5 "$WORK/$tag.err")"
    ((SECONDS < deadline)) || die "no banner from server $tag"
    sleep 0.05
  done
  line=$(head -n1 "$WORK/$tag.out")
  BASE=$(sed -n 's/.*listening on \(http:\/\/127\.0\.0\.1:[0-9]*\).*/\1/p' <<<"$line")
  [[ -n $BASE ]] || die "unexpected banner: $line"
  curl -sf "$BASE/readyz" >/dev/null || sleep 1
}

stop_server() {
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
}

# "queued processing ready" documents, all users (from /metrics).
doc_counts() {
  curl -sf "$BASE/metrics" | awk '
    /^ragmill_documents\{state="queued"\}/ {q = $2}
    /^ragmill_documents\{state="processing"\}/ {p = $2}
    /^ragmill_documents\{state="ready"\}/ {r = $2}
    END {printf "%d %d %d\n", q, p, r}'
}

# wrk MODE CONNS SECS KEYS TAG [DELAY_MS], output to $WORK/wrk-TAG.out.
wrk_() {
  local mode=$1 conns=$2 secs=$3 keys=$4 tag=$5 delay=${6:-0} threads=2
  ((conns < threads)) && threads=$conns
  LOAD_MODE=$mode LOAD_KEYS=$keys LOAD_TAG=$tag UPLOAD_WORDS=$UPLOAD_WORDS LOAD_DELAY_MS=$delay \
    wrk -t"$threads" -c"$conns" -d"${secs}s" --timeout "$WRK_TIMEOUT" --latency -s "$LUA" "$BASE" \
    >"$WORK/wrk-$tag.out" 2>&1
}

# The LOAD line of run TAG as W_<field> variables.
wrk_result() {
  local tag=$1 line field
  line=$(grep '^LOAD ' "$WORK/wrk-$tag.out") || die "no result from wrk: $(tail -5 "$WORK/wrk-$tag.out")"
  W_sample=$(sed -n 's/.* sample=//p' <<<"$line")
  for field in requests rps ok_rps non2xx p50_ms p99_ms max_ms sock statuses retry_after; do
    printf -v "W_$field" '%s' "$(sed -n "s/.* $field=\([^ ]*\).*/\1/p" <<<"$line")"
  done
}

run_wrk() {
  wrk_ "$@" || die "wrk failed: $(tail -5 "$WORK/wrk-$5.out")"
  wrk_result "$5"
}

# Lines "CONNS RATE P50 P99" of a sweep: where the rate holds (within 10% of the best level's,
# at the fewest connections) and what the last level gives against it.
knee() {
  awk -v what="$1" -v unit="$2" '
    {c[NR] = $1; r[NR] = $2; p50[NR] = $3; p99[NR] = $4; if ($2 > best) best = $2}
    END {
      for (i = 1; i <= NR; i++) if (r[i] >= 0.9 * best) { h = i; break }
      printf "%s holds %.0f %s at %d connections (p50 %.0f ms, p99 %.0f ms; best level %.0f)", what, r[h], unit, c[h], p50[h], p99[h], best
      if (h < NR) printf "; at %d connections: %.0f %s (x%.2f), p50 %.0f ms (x%.1f), p99 %.0f ms (x%.1f)", c[NR], r[NR], unit, r[NR] / r[h], p50[NR], p50[NR] / p50[h], p99[NR], p99[NR] / p99[h]
      else printf "; still growing at the last level (raise the connections)"
      print ""
    }' "$3"
}

# One curl during load: "STATUS in Ns" (its body in $WORK/probe-TAG.body).
probe() {
  local tag=$1 what=$2
  if [[ $what == search ]]; then
    curl -s -o "$WORK/probe-$tag.body" -D "$WORK/probe-$tag.headers" -w '%{http_code} in %{time_total}s' \
      -H "Authorization: Bearer $SEARCH_KEY" -H 'Content-Type: application/json' \
      -d '{"query":"what causes the tides","top_k":5}' "$BASE/v1/search"
  else
    printf 'probe upload %s\n' "$tag" >"$WORK/probe-$tag.txt"
    curl -s -o "$WORK/probe-$tag.body" -D "$WORK/probe-$tag.headers" -w '%{http_code} in %{time_total}s' \
      -H "Authorization: Bearer $UPLOAD_KEY" -F "file=@$WORK/probe-$tag.txt" "$BASE/v1/documents"
  fi
}

TABLE=$WORK/table.txt
row_head() {
  printf '%-8s %5s %9s %9s %9s %9s %8s %9s %-24s %s\n' phase conns 'req/s' '2xx/s' 'p50 ms' \
    'p99 ms' non-2xx 'sock err' statuses "$1"
}
row() { # phase conns extra
  printf '%-8s %5s %9.1f %9.1f %9.1f %9.1f %8s %9s %-24s %s\n' "$1" "$2" "$W_rps" "$W_ok_rps" \
    "$W_p50_ms" "$W_p99_ms" "$W_non2xx" "$W_sock" "$W_statuses" "${3:-}"
}

# --- 1. search sweep ---------------------------------------------------------------------------
start_server search --max-pending 1000000
log "search: ${SEARCH_CONNS// /, } connections, ${DURATION} s each"
{
  echo "== search: POST /v1/search top_k 5, $SAMPLE_CHUNKS chunks (samples/), ${DURATION} s a level"
  row_head ""
} >>"$TABLE"
SEARCH_ROWS=$WORK/search.rows
last=${SEARCH_CONNS##* }
for c in $SEARCH_CONNS; do
  if [[ $c == "$last" ]]; then
    (sleep $((DURATION / 2)); probe search-top search >"$WORK/probe-search-top.line") &
    PROBE_PID=$!
  fi
  run_wrk search "$c" "$DURATION" "$SEARCH_KEY" "s$c"
  if [[ $c == "$last" ]]; then wait "$PROBE_PID" || true; fi
  row search "$c" >>"$TABLE"
  echo "$c $W_rps $W_p50_ms $W_p99_ms $W_non2xx $W_sock $W_statuses" >>"$SEARCH_ROWS"
  if [[ $W_sample != - ]]; then SEARCH_SAMPLE=$W_sample; fi
done
stop_server
SEARCH_SUMMARY=$(knee search req/s "$SEARCH_ROWS")
SEARCH_NON2XX=$(awk '{s += $5} END {print s + 0}' "$SEARCH_ROWS")
SEARCH_SOCK=$(awk '{split($6, e, "/"); s += e[1] + e[2] + e[3] + e[4]} END {print s + 0}' "$SEARCH_ROWS")
SEARCH_PROBE=$(cat "$WORK/probe-search-top.line" 2>/dev/null || echo "none")

# --- 2. upload sweep ---------------------------------------------------------------------------
start_server upload --max-pending 1000000
log "upload: ${UPLOAD_CONNS// /, } connections, ${DURATION} s each"
{
  echo
  echo "== upload: multipart POST /v1/documents, one new ${UPLOAD_WORDS}-word .txt a request, ${DURATION} s a level, $WORKERS workers"
  row_head "queue after (queued+processing) / ready"
} >>"$TABLE"
read -r _ _ ready0 < <(doc_counts)
t0=$SECONDS
UPLOAD_ROWS=$WORK/upload.rows
for c in $UPLOAD_CONNS; do
  run_wrk upload "$c" "$DURATION" "$UPLOAD_KEY" "u$c-$RANDOM"
  read -r q p r < <(doc_counts)
  row upload "$c" "$((q + p)) / $r" >>"$TABLE"
  echo "$c $W_ok_rps $W_p50_ms $W_p99_ms" >>"$UPLOAD_ROWS"
done
UPLOAD_KNEE=$(knee upload accepted/s "$UPLOAD_ROWS")
read -r q p r < <(doc_counts)
UPLOAD_SUMMARY=$(awk -v ready=$((r - ready0)) -v secs=$((SECONDS - t0)) -v queue=$((q + p)) 'BEGIN {
  printf "upload: the %s workers processed %.1f docs/s meanwhile (%d in %d s); %d left queued or processing", '"$WORKERS"', ready / secs, ready, secs, queue }')
stop_server

# --- 3. cap --------------------------------------------------------------------------------------
start_server cap --max-pending "$CAP"
log "cap: --max-pending $CAP, $CAP_CONNS connections, ${DURATION} s"
(sleep $((DURATION / 2)); probe cap upload >"$WORK/probe-cap.line") &
PROBE_PID=$!
run_wrk upload "$CAP_CONNS" "$DURATION" "$UPLOAD_KEY" "cap-$RANDOM"
wait "$PROBE_PID" || true
read -r q p r < <(doc_counts)
{
  echo
  echo "== cap: --max-pending $CAP, $CAP_CONNS connections, ${DURATION} s"
  row_head "queue after / ready"
  row cap "$CAP_CONNS" "$((q + p)) / $r"
} >>"$TABLE"
CAP_429=$(tr ',' '\n' <<<"$W_statuses" | sed -n 's/^429://p')
CAP_429=${CAP_429:-0}
CAP_SUMMARY=$(awk -v n="$W_requests" -v k="$CAP_429" 'BEGIN {
  printf "%d of %d uploads answered 429 (%.1f%%)", k, n, n ? 100 * k / n : 0 }')
CAP_SAMPLE=$W_sample
CAP_RETRY=$W_retry_after
CAP_PROBE=$(cat "$WORK/probe-cap.line" 2>/dev/null || echo none)
CAP_PROBE_BODY=$(head -c 400 "$WORK/probe-cap.body" 2>/dev/null || true)
CAP_PROBE_JSON=no
jq -e '.error.code' "$WORK/probe-cap.body" >/dev/null 2>&1 && CAP_PROBE_JSON="yes, code $(jq -r .error.code "$WORK/probe-cap.body")"
CAP_PROBE_HEADERS=$(grep -iE '^(content-type|retry-after):' "$WORK/probe-cap.headers" 2>/dev/null | tr -d '\r' | paste -sd';' || true)
stop_server

# --- 4. mixed ----------------------------------------------------------------------------------
start_server mixed --max-pending 1000000
log "mixed: search alone at $MIXED_SEARCH_CONNS connections, then with $MIXED_USERS users uploading (paced, then flooding), ${MIXED_DURATION} s"
{
  echo
  echo "== mixed: $MIXED_SEARCH_CONNS connections searching, alone (${DURATION} s), then while $MIXED_USERS users upload (${MIXED_DURATION} s): paced ${MIXED_DELAY_MS} ms between uploads, then flooding"
  row_head "queue after / ready"
} >>"$TABLE"
run_wrk search "$MIXED_SEARCH_CONNS" "$DURATION" "$SEARCH_KEY" mix-alone
row alone "$MIXED_SEARCH_CONNS" >>"$TABLE"
B_p50=$W_p50_ms B_p99=$W_p99_ms B_rps=$W_rps
MIXED_SUMMARY=""
for pace in paced flood; do
  delay=0
  [[ $pace == paced ]] && delay=$MIXED_DELAY_MS
  read -r _ _ ready0 < <(doc_counts)
  uptag=mix-up-$pace-$RANDOM
  wrk_ upload "$MIXED_USERS" "$MIXED_DURATION" "$MIXED_KEYS" "$uptag" "$delay" &
  UP_PID=$!
  run_wrk search "$MIXED_SEARCH_CONNS" "$MIXED_DURATION" "$SEARCH_KEY" "mix-search-$pace"
  wait "$UP_PID" || die "upload wrk failed"
  read -r q p r < <(doc_counts)
  row "s+$pace" "$MIXED_SEARCH_CONNS" >>"$TABLE"
  M_p50=$W_p50_ms M_p99=$W_p99_ms M_rps=$W_rps M_non2xx=$W_non2xx M_sock=$W_sock
  wrk_result "$uptag"
  row "u+$pace" "$MIXED_USERS" "$((q + p)) / $r (processed $((r - ready0)) in ${MIXED_DURATION} s)" >>"$TABLE"
  MIXED_SUMMARY+=$(awk -v a="$B_rps" -v b="$M_rps" -v c="$B_p50" -v d="$M_p50" -v e="$B_p99" -v f="$M_p99" \
    -v n="$M_non2xx" -v s="$M_sock" -v un="$W_non2xx" -v us="$W_sock" -v pace="$pace" -v up="$W_ok_rps" 'BEGIN {
    printf "mixed (%s uploads, %.1f accepted/s): search under uploads / alone: req/s x%.2f, p50 x%.2f, p99 x%.2f; non-2xx: search %d, upload %d; socket errors: search %s, upload %s\n", pace, up, b / a, d / c, f / e, n, un, s, us }')$'\n'
done
stop_server

# --- report ------------------------------------------------------------------------------------
mkdir -p "$OUT_DIR"
{
  echo "ragmill load (bench/load.sh), $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "binary: ${BIN#"$ROOT"/}; serve --workers $WORKERS --rate-limit 0; wrk ${WRK_TIMEOUT} timeout, on the same machine"
  echo "machine: $(nproc) CPUs, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n1); load average before: $LOAD0, after: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "sock err = connect/read/write/timeout (wrk); p50/p99 over all responses"
  echo
  cat "$TABLE"
  echo
  echo "$SEARCH_SUMMARY"
  if ((SEARCH_NON2XX == 0 && SEARCH_SOCK == 0)); then
    echo "beyond it: every search answered 200 (no refusal, no socket error over all levels): requests wait and latency grows"
  else
    echo "beyond it: $SEARCH_NON2XX non-2xx and $SEARCH_SOCK socket errors over all levels; sample: ${SEARCH_SAMPLE:-none}"
  fi
  echo "a curl search during the last level: $SEARCH_PROBE"
  echo "$UPLOAD_KNEE"
  echo "$UPLOAD_SUMMARY"
  echo "cap: $CAP_SUMMARY; sample: $CAP_SAMPLE; Retry-After: $CAP_RETRY"
  echo "cap: a curl upload during the run: $CAP_PROBE, JSON error: $CAP_PROBE_JSON; $CAP_PROBE_HEADERS"
  echo "     $CAP_PROBE_BODY"
  printf '%s' "$MIXED_SUMMARY"
} | tee "$OUT_DIR/load.txt"
