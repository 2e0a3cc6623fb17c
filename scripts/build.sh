#!/usr/bin/env bash
# Configures and builds promrelay. Usage: scripts/build.sh [--sanitize] [targets...]
# Release build in build/, ASan+UBSan build in build-asan/. Uses ccache and -j2.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=build
extra=()
if [[ "${1:-}" == "--sanitize" ]]; then
  shift
  build_dir=build-asan
  extra=(-DPROMRELAY_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug)
fi
# Cache hits across clones and build dirs: paths relative to the checkout.
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if [[ ! -f "$build_dir/CMakeCache.txt" ]]; then
  cmake -S . -B "$build_dir" "${generator[@]}" "${extra[@]}" >/dev/null
fi
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build "$build_dir" -j"${PROMRELAY_JOBS:-2}" "${targets[@]}"
