#!/usr/bin/env bash
# The README's test command: installs what is needed, builds, and runs every
# test: unit and deployment checks, end-to-end tests against real vmagent,
# Prometheus and VictoriaMetrics, the short load benchmark, then the unit
# tests again under AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh

failed=()
stage() {  # stage NAME DIR CTEST-ARGS...: runs ctest, remembers a failure
  local name=$1 dir=$2
  shift 2
  echo "== $name =="
  (cd "$dir" && ctest --output-on-failure --timeout 900 "$@") || failed+=("$name")
}
stage "unit and deployment tests" build -j2 -LE 'e2e|bench'
# The end-to-end tests drive real third-party servers whose start-up timing
# varies on a loaded machine: a test gets a second run before it counts as
# failed (a real defect fails both).
stage "end-to-end tests" build -L e2e --repeat until-pass:2
stage "load benchmark" build -L bench
# The short load benchmark's figures (CI logs show them on every run).
if [[ -f build/bench-out/table.md ]]; then
  echo "== promrelay vs vmagent (bench/ci-bench.sh) =="
  cat build/bench-out/table.md
fi
if [[ "${PROMRELAY_SKIP_ASAN:-0}" != "1" ]]; then
  bash scripts/build.sh --sanitize
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    stage "unit tests under ASan+UBSan" build-asan -j2 -L unit
fi
if ((${#failed[@]})); then
  echo "FAILED stages: ${failed[*]}"
  exit 1
fi
echo "all test stages passed"
