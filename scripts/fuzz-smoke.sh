#!/usr/bin/env bash
# A short fuzzing run of every target in fuzz/ (cargo-fuzz, libFuzzer, nightly toolchain).
#
#   scripts/fuzz-smoke.sh            # 20 s per target (CI)
#   scripts/fuzz-smoke.sh 600        # a longer run
#
# Targets: extract_{txt,md,html,pdf,docx} (detection and extraction of arbitrary bytes under
# that file name) and chunk (arbitrary text, plain or Markdown, with the MiniLM tokenizer at
# RAGMILL_MODEL_DIR or models/all-MiniLM-L6-v2). Seeds come from the extractor's test fixtures
# and samples/; the corpus grows under fuzz/corpus/<target> (git-ignored) and a finding is
# written to fuzz/artifacts/<target>/. Exits non-zero on a finding; exits 0 with a SKIPPED
# line when nightly or cargo-fuzz is missing.
set -euo pipefail

secs="${1:-20}"
root="$(cd "$(dirname "$0")/.." && pwd)"

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz-smoke: SKIPPED: no nightly toolchain (rustup toolchain install nightly)"
    exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: SKIPPED: cargo-fuzz is not installed (cargo install cargo-fuzz)"
    exit 0
fi

cd "$root/fuzz"
# No sanitizer: the code under test is safe Rust (the C regex library aside), and on a small
# machine the throughput matters more. Panics, hangs (-timeout) and memory (-rss_limit_mb) are
# what the targets look for.
flags=(-s none -O)
cargo +nightly fuzz build "${flags[@]}"

seeds_extract="$root/crates/ragmill-extract/tests/data"
seeds_chunk="$root/samples"
status=0
for target in extract_txt extract_md extract_html extract_pdf extract_docx chunk; do
    mkdir -p "corpus/$target"
    if [ "$target" = chunk ]; then
        seeds="$seeds_chunk" max_len=4096
    else
        seeds="$seeds_extract" max_len=65536
    fi
    log="$(mktemp)"
    if cargo +nightly fuzz run "${flags[@]}" "$target" "corpus/$target" "$seeds" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len="$max_len" \
        -print_final_stats=1 >"$log" 2>&1; then
        runs="$(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')"
        echo "fuzz-smoke: $target ok, $runs executions in ${secs} s"
    else
        status=1
        echo "fuzz-smoke: $target FOUND A PROBLEM (artifacts in fuzz/artifacts/$target):"
        tail -n 40 "$log"
    fi
    rm -f "$log"
done
exit "$status"
