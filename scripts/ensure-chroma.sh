#!/usr/bin/env sh
# Installs ChromaDB 1.5.9 (the server ragmill-chroma's tests run) into .venv-chroma at the
# workspace root, unless it is there already. Idempotent; prints one line.
set -eu
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv-chroma"
if [ -x "$venv/bin/chroma" ]; then
    echo "chroma: already installed at $venv/bin/chroma"
    exit 0
fi
if ! python3 -m venv "$venv" 2>/dev/null; then
    # Debian's python3 keeps venv in a package of its own.
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
        python3 -m venv "$venv"
    else
        echo "chroma: python3 -m venv failed; install python3-venv (Debian) and run again" >&2
        exit 1
    fi
fi
"$venv/bin/pip" install -q --disable-pip-version-check chromadb==1.5.9
echo "chroma: installed chromadb 1.5.9 at $venv/bin/chroma"
