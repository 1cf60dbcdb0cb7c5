#!/usr/bin/env bash
# Side-by-side embedding throughput, same model, same texts, back to back in one run:
# sentence-transformers on PyTorch (CPU, FP32) vs ragmill's local embedder at FP32 and at INT8.
#
# For each token length T it writes one texts file (every line exactly T word-piece tokens
# including [CLS]/[SEP], cut with the model's own tokenizer.json and decoded back to text), then
# for each batch size B runs
#   1. sentence-transformers: SentenceTransformer(MODEL_DIR, device="cpu"), max_seq_length 256,
#      encode(texts, batch_size=B, normalize_embeddings=True), one warm-up batch untimed,
#      torch threads = nproc;
#   2. ragmill, once per precision P (fp32, then int8):
#      `ragmill bench embed --input FILE --batch B --precision P --json`
#      (RAGMILL_MODEL_DIR=MODEL_DIR; one warm-up batch untimed),
# and prints a Markdown table of chunks/s and tokens/s per side with each ragmill precision's
# ratio to PyTorch (ready to paste into an issue), or the combined report as JSON with --json.
# Raw rows go to OUT/results.jsonl, the assembled report to OUT/report.json.
#
# Usage: scripts/compare-embed.sh [options]
#   --ragmill PATH     ragmill binary (default target/release/ragmill; built with
#                      `cargo build --release -p ragmill` if missing)
#   --model-dir DIR    model directory (default $RAGMILL_MODEL_DIR or models/all-MiniLM-L6-v2)
#   --python PATH      Python with sentence-transformers (default $PYTHON, else .venv-bench,
#                      created on demand with `pip install sentence-transformers`)
#   --batches LIST     comma-separated batch sizes (default 1,8,32)
#   --tokens LIST      comma-separated chunk lengths in tokens, 3..256 (default 64,256)
#   --precisions LIST  comma-separated ragmill precisions, fp32 and/or int8 (default fp32,int8)
#   --chunks N         chunks per run (default 256)
#   --only SIDE        run only `pytorch` or only `ragmill` (all of --precisions)
#   --out DIR          where texts and raw results go (default bench-out/compare-embed)
#   --json             print the combined report as JSON instead of the table
#   -h, --help
#
# Example: scripts/compare-embed.sh --python /opt/st-venv/bin/python --chunks 8 --batches 1,8 --tokens 64
set -euo pipefail

die() { echo "compare-embed: $*" >&2; exit 1; }
log() { echo "compare-embed: $*" >&2; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HELPER="$ROOT/scripts/compare_embed.py"

RAGMILL="$ROOT/target/release/ragmill"
MODEL_DIR="${RAGMILL_MODEL_DIR:-$ROOT/models/all-MiniLM-L6-v2}"
PY="${PYTHON:-}"
BATCHES="1,8,32"
TOKENS="64,256"
PRECISIONS="fp32,int8"
CHUNKS=256
ONLY=""
OUT="$ROOT/bench-out/compare-embed"
JSON=0
RAGMILL_GIVEN=0

while [[ $# -gt 0 ]]; do
  case "$1" in
    --ragmill) RAGMILL="${2:?--ragmill needs a path}"; RAGMILL_GIVEN=1; shift 2 ;;
    --model-dir) MODEL_DIR="${2:?--model-dir needs a directory}"; shift 2 ;;
    --python) PY="${2:?--python needs a path}"; shift 2 ;;
    --batches) BATCHES="${2:?--batches needs a list}"; shift 2 ;;
    --tokens) TOKENS="${2:?--tokens needs a list}"; shift 2 ;;
    --precisions) PRECISIONS="${2:?--precisions needs a list (fp32,int8)}"; shift 2 ;;
    --chunks) CHUNKS="${2:?--chunks needs a number}"; shift 2 ;;
    --only) ONLY="${2:?--only needs pytorch or ragmill}"; shift 2 ;;
    --out) OUT="${2:?--out needs a directory}"; shift 2 ;;
    --json) JSON=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (try --help)" ;;
  esac
done

[[ "$ONLY" == "" || "$ONLY" == pytorch || "$ONLY" == ragmill ]] || die "--only must be pytorch or ragmill, not $ONLY"
[[ "$CHUNKS" =~ ^[1-9][0-9]*$ ]] || die "--chunks must be a positive integer, not $CHUNKS"
IFS=',' read -r -a BATCH_LIST <<< "$BATCHES"
IFS=',' read -r -a TOKEN_LIST <<< "$TOKENS"
for v in "${BATCH_LIST[@]}" "${TOKEN_LIST[@]}"; do
  [[ "$v" =~ ^[1-9][0-9]*$ ]] || die "batch sizes and token lengths must be positive integers, got '$v'"
done
for t in "${TOKEN_LIST[@]}"; do
  (( t >= 3 && t <= 256 )) || die "token length $t out of range 3..256 (the model's max_seq_length is 256)"
done
IFS=',' read -r -a PRECISION_LIST <<< "$PRECISIONS"
(( ${#PRECISION_LIST[@]} > 0 )) || die "--precisions needs at least one of fp32,int8"
SEEN=","
for p in "${PRECISION_LIST[@]}"; do
  [[ "$p" == fp32 || "$p" == int8 ]] || die "--precisions takes fp32 and/or int8, got '$p'"
  [[ "$SEEN" != *",$p,"* ]] || die "--precisions lists $p twice"
  SEEN="$SEEN$p,"
done

# --- model ---------------------------------------------------------------------------------
[[ -d "$MODEL_DIR" ]] || die "model dir $MODEL_DIR not found (set RAGMILL_MODEL_DIR or --model-dir; \`ragmill models\` fetches it)"
for f in tokenizer.json config.json model.safetensors; do
  [[ -f "$MODEL_DIR/$f" ]] || die "model dir $MODEL_DIR has no $f"
done
MODEL_DIR="$(cd "$MODEL_DIR" && pwd)"

# --- python (needed for the texts in every case) -------------------------------------------
[[ -f "$HELPER" ]] || die "helper $HELPER missing"
if [[ -z "$PY" ]]; then
  VENV="$ROOT/.venv-bench"
  if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import sentence_transformers' 2>/dev/null; then
    command -v python3 >/dev/null || die "python3 not found (needed to create $VENV; or pass --python / set PYTHON)"
    log "creating $VENV with sentence-transformers (one-off; several minutes)"
    python3 -m venv "$VENV" || die "could not create venv $VENV (is python3-venv installed?)"
    "$VENV/bin/pip" install --quiet --upgrade pip >&2 || die "pip upgrade failed in $VENV"
    "$VENV/bin/pip" install --quiet sentence-transformers >&2 || die "pip install sentence-transformers failed in $VENV"
  fi
  PY="$VENV/bin/python"
fi
[[ -x "$PY" ]] || command -v "$PY" >/dev/null || die "python $PY not found"
"$PY" -c 'import tokenizers' 2>/dev/null || die "$PY cannot import tokenizers (pip install sentence-transformers)"
if [[ "$ONLY" != ragmill ]]; then
  "$PY" -c 'import sentence_transformers, torch' 2>/dev/null \
    || die "$PY cannot import sentence_transformers/torch (pip install sentence-transformers, or --only ragmill)"
fi

# --- ragmill -------------------------------------------------------------------------------
if [[ "$ONLY" != pytorch ]]; then
  if [[ ! -x "$RAGMILL" ]]; then
    (( RAGMILL_GIVEN == 0 )) || die "ragmill binary $RAGMILL not found"
    command -v cargo >/dev/null || die "$RAGMILL missing and cargo not found to build it"
    log "building ragmill (cargo build --release -p ragmill)"
    (cd "$ROOT" && cargo build --release -p ragmill >&2) || die "cargo build --release -p ragmill failed"
    [[ -x "$RAGMILL" ]] || die "build finished but $RAGMILL is still missing"
  fi
  EMBED_HELP="$("$RAGMILL" bench embed --help 2>&1)" || die "$RAGMILL has no working \`bench embed\` command"
  [[ "$EMBED_HELP" == *--precision* ]] || die "$RAGMILL predates --precision (rebuild: cargo build --release -p ragmill)"
fi

# --- machine -------------------------------------------------------------------------------
NPROC="$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)"
CPU="$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n1)"
[[ -n "$CPU" ]] || CPU="$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo 2>/dev/null | head -n1)"
[[ -n "$CPU" ]] || CPU="unknown"
log "machine: $CPU, $NPROC CPUs; model: $MODEL_DIR"

mkdir -p "$OUT" || die "cannot create $OUT"
SOURCES=()
for f in "$ROOT"/samples/*.md "$ROOT"/samples/*.txt; do
  [[ -f "$f" && "$(basename "$f")" != README.md ]] && SOURCES+=(--source "$f")
done

RESULTS="$OUT/results.jsonl"
: > "$RESULTS"
for T in "${TOKEN_LIST[@]}"; do
  TEXTS="$OUT/texts-${T}tok-${CHUNKS}.txt"
  "$PY" "$HELPER" texts --model-dir "$MODEL_DIR" --tokens "$T" --chunks "$CHUNKS" --out "$TEXTS" \
    "${SOURCES[@]}" > "$OUT/texts-${T}.json" || die "generating the $T-token texts failed"
  for B in "${BATCH_LIST[@]}"; do
    PT="null"; RM=""
    if [[ "$ONLY" != ragmill ]]; then
      log "pytorch: batch $B, $T tokens, $CHUNKS chunks"
      PT="$("$PY" "$HELPER" st --model-dir "$MODEL_DIR" --input "$TEXTS" --batch "$B" --threads "$NPROC")" \
        || die "sentence-transformers run failed (batch $B, $T tokens)"
    fi
    if [[ "$ONLY" != pytorch ]]; then
      for P in "${PRECISION_LIST[@]}"; do
        log "ragmill $P: batch $B, $T tokens, $CHUNKS chunks"
        R="$(RAGMILL_MODEL_DIR="$MODEL_DIR" "$RAGMILL" bench embed --input "$TEXTS" --batch "$B" \
          --precision "$P" --json | tail -n1)" \
          || die "ragmill bench embed --precision $P failed (batch $B, $T tokens)"
        [[ "$R" == "{"*"}" ]] || die "ragmill bench embed --precision $P printed no JSON (batch $B, $T tokens)"
        [[ "$R" == *"\"precision\":\"$P\""* ]] \
          || die "ragmill bench embed --precision $P reported another precision: $R"
        RM="${RM:+$RM,}\"$P\":$R"
      done
    fi
    printf '{"batch":%s,"tokens":%s,"pytorch":%s,"ragmill":{%s}}\n' "$B" "$T" "$PT" "$RM" >> "$RESULTS"
  done
done

# --- report --------------------------------------------------------------------------------
REPORT="$OUT/report.json"
"$PY" - "$RESULTS" "$REPORT" "$CPU" "$NPROC" "$MODEL_DIR" "$CHUNKS" "$PRECISIONS" "$ONLY" <<'EOF' \
  || die "could not assemble the report (see $RESULTS)"
import json, sys
results, report, cpu, nproc, model_dir, chunks, precisions, only = sys.argv[1:]
precisions = [] if only == "pytorch" else precisions.split(",")
rows = []
torch_v = st_v = pt_threads = rm_threads = engine = None
models, kernels = {}, []
with open(results) as f:
    for line in f:
        r = json.loads(line)
        pt, rms = r["pytorch"], r["ragmill"] or {}
        if pt:
            torch_v, st_v, pt_threads = pt.get("torch"), pt.get("sentence_transformers"), pt.get("threads")
        ptc = pt["chunks_per_s"] if pt else None
        row = {
            "batch": r["batch"], "tokens": r["tokens"],
            "pytorch": {"chunks_per_s": ptc, "tokens_per_s": pt["tokens_per_s"]} if pt else None,
            "ragmill": {},
            "raw": {"pytorch": pt, "ragmill": rms},
        }
        for p, rm in rms.items():
            models[p] = rm.get("model")
            rm_threads, engine = rm.get("threads"), rm.get("engine")
            if rm.get("kernels") and rm["kernels"] not in kernels:
                kernels.append(rm["kernels"])
            rmc = rm["chunks_per_s"]
            row["ragmill"][p] = {
                "chunks_per_s": rmc, "tokens_per_s": rm["tokens_per_s"],
                "ratio_vs_pytorch": (rmc / ptc) if (ptc and rmc) else None,
            }
        rows.append(row)
# The model id without the "+int8" that ragmill appends to it for quantised weights.
base = []
for p, m in models.items():
    m = m[: -len("+" + p)] if m and m.endswith("+" + p) else m
    if m and m not in base:
        base.append(m)
out = {
    "machine": {"cpu": cpu, "nproc": int(nproc)},
    "model_dir": model_dir, "chunks": int(chunks),
    "torch": torch_v, "sentence_transformers": st_v, "pytorch_threads": pt_threads,
    "ragmill": " / ".join(base) or None, "ragmill_models": models,
    "precisions": precisions, "kernels": " / ".join(kernels) or None, "engine": engine,
    "ragmill_threads": rm_threads,
    "ratio_vs_pytorch": "ragmill chunks/s / sentence-transformers (PyTorch FP32) chunks/s, same texts",
    "rows": rows,
}
with open(report, "w") as f:
    json.dump(out, f, indent=2)
EOF

if (( JSON )); then
  cat "$REPORT"
else
  "$PY" "$HELPER" table "$REPORT"
fi
log "raw results in $RESULTS, report in $REPORT"
