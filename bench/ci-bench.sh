#!/usr/bin/env bash
# CI's short load benchmark (issue 5, item 3): promrelay and vmagent side by
# side for under a minute. Fails on request errors and on any sample lost,
# duplicated, malformed or misrouted at the sink; never on speed. Prints the
# figure table so every CI log shows the current numbers.
# Usage: bench/ci-bench.sh [BUILD_DIR]   (default: build)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build_dir="${1:-$root/build}"
out="$build_dir/bench-out"
mkdir -p "$out"
echo "ci-bench: promrelay vs vmagent, quick mode (figures are informative only)"
set +e
bash "$root/bench/compare.sh" --quick --require-promrelay \
  --build-dir "$build_dir" --out "$out"
rc=$?
set -e
if [[ $rc -eq 3 ]]; then
  # promrelay's CLI is built but cannot run the proxy yet: reported as a
  # skipped test (CTest SKIP_RETURN_CODE 77), never as a pass.
  echo "ci-bench: SKIPPED: promrelay could not be measured (see NOTE above)"
  exit 77
fi
if [[ $rc -ne 0 ]]; then
  echo "ci-bench: FAILED (request errors or samples lost/malformed; see above," \
       "logs in $out)"
  exit "$rc"
fi
echo "ci-bench: delivery exact (table also in $out/table.md)"
