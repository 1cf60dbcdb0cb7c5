#!/usr/bin/env bash
# The second README command: run the whole test suite (the model is fetched first if missing):
# the Rust tests, then the web UI's browser tests (headless Chromium driven by playwright-core,
# against a real `ragmill serve`; screenshots land in tests/web/artifacts/).
set -euo pipefail
cd "$(dirname "$0")/.."
export RAGMILL_MODEL_DIR=${RAGMILL_MODEL_DIR:-$PWD/models/all-MiniLM-L6-v2}
scripts/fetch-model.sh "$RAGMILL_MODEL_DIR"
export RUST_BACKTRACE=${RUST_BACKTRACE:-0}
# The Redis tests and the cluster test start their own redis-server (Debian's) and run each
# process in its own network namespace (root; iproute2's ip).
if ! command -v redis-server >/dev/null || ! command -v ip >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test: installing redis-server and iproute2 for the cluster tests (apt-get)"
    apt-get update -qq && apt-get install -y -qq redis-server iproute2 >/dev/null
  fi
fi
scripts/ensure-cxx.sh
# The vector-store tests run a real ChromaDB server (PyPI's chromadb, in .venv-chroma).
scripts/ensure-chroma.sh
# The release profile: the same build `scripts/quickstart.sh` makes (and the binary users run),
# so after it only the test targets compile, not the whole workspace a second time; it also
# runs the model at full speed. The one crate with `unsafe` code (the SIMD kernels) is tested
# once more in the dev profile, where debug assertions and the standard library's checks of
# unsafe preconditions are on.
cargo test --workspace --release --locked "$@"
[ $# -gt 0 ] || cargo test -p ragmill-kernels --locked

if [ "${RAGMILL_SKIP_BROWSER_TESTS:-}" = 1 ]; then
  echo "test: browser tests skipped (RAGMILL_SKIP_BROWSER_TESTS=1)"
  exit 0
fi
export CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
missing=()
[ -x "$CHROMIUM" ] || missing+=(chromium)
command -v npm >/dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "test: installing ${missing[*]} for the browser tests (apt-get)"
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ ! -x "$CHROMIUM" ] || ! command -v npm >/dev/null; then
  echo "test: the browser tests need Chromium at $CHROMIUM (or set CHROMIUM) and Node.js with npm;" \
       "install them, or set RAGMILL_SKIP_BROWSER_TESTS=1 to run the Rust tests only" >&2
  exit 1
fi
export RAGMILL_BIN=${RAGMILL_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/ragmill}
(cd tests/web && npm ci --no-audit --no-fund --loglevel=error && npm test)
