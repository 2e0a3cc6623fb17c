#!/usr/bin/env bash
# The README's test command: installs what is needed, builds, and runs every
# test (unit, end-to-end with real vmagent/Prometheus/VictoriaMetrics), then
# the unit tests again under AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
(cd build && ctest --output-on-failure -j2 --timeout 900)
# The short load benchmark's figures (CI logs show them on every run).
if [[ -f build/bench-out/table.md ]]; then
  echo "== promrelay vs vmagent (bench/ci-bench.sh) =="
  cat build/bench-out/table.md
fi
if [[ "${PROMRELAY_SKIP_ASAN:-0}" != "1" ]]; then
  bash scripts/build.sh --sanitize
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
     ctest --output-on-failure -j2 -L unit --timeout 900)
fi
