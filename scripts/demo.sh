#!/usr/bin/env bash
# The README's main-job command: see promrelay split real Starform traffic.
#
#   bash scripts/demo.sh [--duration SECONDS] [--tenants N]
#
# Installs what is missing (Debian packages, via scripts/install-deps.sh),
# builds promrelay (scripts/build.sh promrelay), then runs tests/e2e/demo.py:
# VictoriaMetrics (customer sink), a TLS + basic-auth Prometheus standing in
# for Grafana Cloud, promrelay with config/demo/promrelay.yaml and a real
# vmagent scraping Starform-shaped exporters for ~30 s. It prints what arrived
# where and the proof that no tenant identifier reached the platform sink,
# then stops everything. Set PROMRELAY_BIN to use an already built binary.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
if [[ -z "${PROMRELAY_BIN:-}" ]]; then
  echo "demo: building promrelay (first time: a few minutes)"
  bash scripts/build.sh promrelay
  export PROMRELAY_BIN="$PWD/build/promrelay"
fi

# Everything the demo starts is a child of demo.py, which stops it on exit,
# on Ctrl-C and on SIGTERM (and the children die with it if it is killed).
pid=
cleanup() {
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

python3=/usr/bin/python3
[[ -x "$python3" ]] || python3=python3
"$python3" tests/e2e/demo.py --binary "$PROMRELAY_BIN" "$@" &
pid=$!
set +e
wait "$pid"
rc=$?
set -e
pid=
exit "$rc"
