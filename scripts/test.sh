#!/usr/bin/env bash
# The second README command: run the whole test suite (the model is fetched first if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
export RAGMILL_MODEL_DIR=${RAGMILL_MODEL_DIR:-$PWD/models/all-MiniLM-L6-v2}
scripts/fetch-model.sh "$RAGMILL_MODEL_DIR"
export RUST_BACKTRACE=${RUST_BACKTRACE:-0}
cargo test --workspace --locked "$@"
