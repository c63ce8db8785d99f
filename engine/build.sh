#!/usr/bin/env bash
# Builds engine/dist/shoal-hnsw.wasm from the vendored hnswlib (engine/hnswlib) and
# engine/src/shoal_hnsw.cpp with Debian's emscripten 3.1.6, then compares its sha256 with the
# recorded one (engine/dist/shoal-hnsw.wasm.sha256). `--update` records a new hash instead.
# CI never rebuilds: .ci/run only checks the committed artifact against the recorded hash.
set -euo pipefail
cd "$(dirname "$0")"
export NODE_PATH="${NODE_PATH:-/usr/share/nodejs}"
EXPECTED_EMCC="3.1.6"
version="$(emcc --version | head -1 | sed -E 's/.* ([0-9]+\.[0-9]+\.[0-9]+).*/\1/')"
if [ "$version" != "$EXPECTED_EMCC" ]; then
  echo "warning: emcc $version, the recorded artifact was built with $EXPECTED_EMCC (bytes may differ)" >&2
fi
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
# -fwasm-exceptions: C++ exceptions are caught inside the module (zero cost until thrown).
# STANDALONE_WASM: no Emscripten JS glue; the module imports only a few WASI stubs and
# emscripten_notify_memory_growth, and shared/engine/shoal-wasm.ts instantiates it.
emcc src/shoal_hnsw.cpp -o "$out/shoal-hnsw.wasm" \
  -std=c++17 -O3 -msimd128 -mbulk-memory -fwasm-exceptions -fno-rtti -DNDEBUG \
  -ffile-prefix-map="$PWD"=. \
  --no-entry -sSTANDALONE_WASM=1 -sFILESYSTEM=0 -sALLOW_MEMORY_GROWTH=1 -sMAXIMUM_MEMORY=4GB \
  -sINITIAL_MEMORY=16MB -sTOTAL_STACK=1MB -sEXPORTED_FUNCTIONS=_malloc,_free
cp "$out/shoal-hnsw.wasm" dist/shoal-hnsw.wasm
actual="$(sha256sum dist/shoal-hnsw.wasm | cut -d' ' -f1)"
if [ "${1:-}" = "--update" ]; then
  echo "$actual  engine/dist/shoal-hnsw.wasm" > dist/shoal-hnsw.wasm.sha256
  echo "recorded $actual"
  exit 0
fi
expected="$(cut -d' ' -f1 dist/shoal-hnsw.wasm.sha256)"
if [ "$actual" != "$expected" ]; then
  echo "engine/dist/shoal-hnsw.wasm: sha256 $actual differs from the recorded $expected" >&2
  exit 1
fi
echo "engine/dist/shoal-hnsw.wasm reproduced: sha256 $actual"
