#!/usr/bin/env bash
# Installs every Debian package promrelay needs to build, test and run its demo.
# Used by both README commands, .ci/run and docker/Dockerfile: one way to set up.
set -euo pipefail

BUILD_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  libboost1.81-dev libprotobuf-dev protobuf-compiler libsnappy-dev
  libabsl-dev libre2-dev libyaml-cpp-dev libssl-dev catch2
  libbenchmark-dev
)
# Real components the end-to-end tests and the demo run against.
RUNTIME_TEST_PACKAGES=(victoria-metrics prometheus curl python3 python3-yaml openssl procps)

# Shared libraries the promrelay binary needs at run time (container image).
RUNTIME_LIBRARIES=(
  libabsl20220623 libre2-9 libyaml-cpp0.7 libssl3
  ca-certificates curl
)

case "${1:-}" in
  --build-only) want=("${BUILD_PACKAGES[@]}") ;;
  --runtime) want=("${RUNTIME_LIBRARIES[@]}") ;;
  "") want=("${BUILD_PACKAGES[@]}" "${RUNTIME_TEST_PACKAGES[@]}") ;;
  *) echo "usage: $0 [--build-only|--runtime]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [[ "${1:-}" == "--runtime" ]]; then
    apt-get clean && rm -rf /var/lib/apt/lists/*
  fi
fi
# The Debian prometheus package starts a service on :9090; the tests run their own.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
  systemctl stop prometheus || true
fi
