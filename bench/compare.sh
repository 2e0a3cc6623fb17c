#!/usr/bin/env bash
# promrelay vs vmagent on the Starform split, same sink, same payloads, one run.
# Prints a Markdown table and writes bench/out/results.json; exits 1 if any
# sample was lost, duplicated, malformed or misrouted, or a request failed.
# Usage: bench/compare.sh [--quick] [--duration S] [--series N] [--only NAME]
#        [--build-dir DIR] [--require-promrelay]   (--help for all options)
# Needs: <build>/bench/promrelay-loadgen, promrelay-blackhole (cmake targets),
# <build>/promrelay, and vmagent (Debian package victoria-metrics).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# compare.py starts every process itself and kills them on exit or signal;
# this trap covers the wrapper being interrupted before Python handles it.
child=""
trap '[[ -n "$child" ]] && kill -TERM "$child" 2>/dev/null; wait 2>/dev/null || true' EXIT INT TERM
python3 "$here/compare.py" "$@" &
child=$!
set +e
wait "$child"
rc=$?
child=""
exit "$rc"
