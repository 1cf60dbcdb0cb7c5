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
python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check chromadb==1.5.9
echo "chroma: installed chromadb 1.5.9 at $venv/bin/chroma"
