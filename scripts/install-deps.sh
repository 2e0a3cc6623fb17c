#!/usr/bin/env bash
# Installs every Debian package promrelay needs to build, test and run its demo.
# Used by both README commands, .ci/run and docker/Dockerfile: one way to set up.
set -euo pipefail

BUILD_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  libboost1.81-dev libprotobuf-dev protobuf-compiler libsnappy-dev
  libabsl-dev libre2-dev libyaml-cpp-dev libssl-dev catch2
)
# Real components the end-to-end tests and the demo run against.
RUNTIME_TEST_PACKAGES=(victoria-metrics prometheus curl python3 openssl procps)

want=("${BUILD_PACKAGES[@]}")
if [[ "${1:-}" != "--build-only" ]]; then
  want+=("${RUNTIME_TEST_PACKAGES[@]}")
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The Debian prometheus package starts a service on :9090; the tests run their own.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
  systemctl stop prometheus || true
fi
