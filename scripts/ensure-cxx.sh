#!/usr/bin/env bash
# The build compiles C and C++ (SQLite, mimalloc; usearch, the HNSW index): makes sure a C++
# compiler is there, installing Debian's g++ when run as root with apt-get.
set -euo pipefail
command -v c++ >/dev/null && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing g++ (the HNSW index, usearch, is C++) with apt-get"
  apt-get update -qq && apt-get install -y -qq g++ >/dev/null
  exit 0
fi
echo "a C++ compiler (c++) is needed to build ragmill: install g++ or clang" >&2
exit 1
