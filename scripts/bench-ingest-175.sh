#!/usr/bin/env bash
# The origin plan's pain point, measured: one document that chunks into ~175 chunks (256-token
# chunks), ingested from scratch by `ragmill ingest` with the native encoder in FP32, then INT8,
# and by the candle reference engine, each into a fresh data directory, back to back.
#
# The document is the sample texts (samples/*.md, *.txt) repeated until it is about 175 chunks
# long, every line of repetition N prefixed with "(N)" so no two chunks are identical and the
# embedding cache cannot skip any, written to bench-out/long-175.md. Prints one line per run, or JSON lines with --json.
#
# Usage: scripts/bench-ingest-175.sh [--ragmill PATH] [--json]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RAGMILL="$ROOT/target/release/ragmill"
JSON=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --ragmill) RAGMILL="${2:?--ragmill needs a path}"; shift 2 ;;
    --json) JSON=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-ingest-175: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ -x "$RAGMILL" ]] || (cd "$ROOT" && cargo build --release -p ragmill >&2)

OUT="$ROOT/bench-out"
mkdir -p "$OUT"
DOC="$OUT/long-175.md"
: > "$DOC"
N=0
while (( $(wc -c < "$DOC") < 118000 )); do
  N=$((N + 1))
  for f in "$ROOT"/samples/*.md "$ROOT"/samples/*.txt; do
    [[ "$(basename "$f")" == README.md ]] && continue
    sed "s/^\(.\)/($N) \1/" "$f" >> "$DOC"
    printf '\n\n' >> "$DOC"
  done
done

for run in "native fp32" "native int8" "candle fp32"; do
  read -r engine precision <<< "$run"
  DATA="$(mktemp -d)"
  result="$("$RAGMILL" --data-dir "$DATA" --model-dir "$ROOT/models/all-MiniLM-L6-v2" --json \
    --engine "$engine" --precision "$precision" ingest --user bench "$DOC" | tail -n1)"
  rm -rf "$DATA"
  if (( JSON )); then
    echo "{\"engine\":\"$engine\",\"precision\":\"$precision\",\"result\":$result}"
  else
    python3 - "$engine" "$precision" "$result" <<'PY'
import json, sys
engine, precision, r = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
print(f"{engine:>6} {precision}: {r['chunks']} chunks in {r['seconds']:.1f} s ({r['chunks'] / r['seconds']:.1f} chunks/s)")
PY
  fi
done
