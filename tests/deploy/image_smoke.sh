#!/usr/bin/env bash
# Builds the container image from docker/Dockerfile with buildah (no Docker
# engine needed) and smoke-tests it: promrelay --help and check-config run in
# the image, then the server starts, accepts a remote_write request, answers
# /-/healthy and exposes /metrics, and stops on SIGTERM.
# Usage: tests/deploy/image_smoke.sh   (root; takes minutes: it compiles)
set -euo pipefail
cd "$(dirname "$0")/../.."
export DEBIAN_FRONTEND=noninteractive
command -v buildah >/dev/null || apt-get install -y -qq buildah debootstrap >/dev/null
if ! buildah images --format '{{.Name}}:{{.Tag}}' | grep -q 'debian:bookworm-slim'; then
  # No registry here: make the base image from Debian's archive.
  rootfs=$(mktemp -d)
  debootstrap --variant=minbase bookworm "$rootfs" >/dev/null
  ctr=$(buildah from scratch)
  cp -a "$rootfs"/. "$(buildah mount "$ctr")"/
  buildah umount "$ctr" >/dev/null
  buildah commit -q "$ctr" docker.io/library/debian:bookworm-slim >/dev/null
  buildah rm "$ctr" >/dev/null
  rm -rf "$rootfs"
fi
buildah bud -q --isolation chroot --pull=never -f docker/Dockerfile -t promrelay:dev . >/dev/null
echo "image built: $(buildah images --format '{{.Name}}:{{.Tag}} {{.Size}}' | grep promrelay)"

ctr=$(buildah from promrelay:dev)
# The server runs as /usr/local/bin/promrelay or as promrelay, depending on
# how buildah resolves the command.
server_pattern='^(/usr/local/bin/)?promrelay --config /etc/promrelay/smoke.yaml'
cleanup() {
  pkill -KILL -f "$server_pattern" 2>/dev/null || true
  buildah rm "$ctr" >/dev/null 2>&1 || true
}
trap cleanup EXIT
run() { buildah run --isolation chroot --user 10001:10001 "$ctr" -- "$@"; }
run promrelay --help >/dev/null
run promrelay --version
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > /tmp/promrelay-image-smoke.yaml <<YAML
server: {listen_address: 127.0.0.1:$port}
remote_write:
  - name: sink
    url: http://127.0.0.1:9/api/v1/write
    storage: {path: /var/lib/promrelay/sink, max_bytes: 64MiB}
YAML
buildah copy --chown 10001:10001 "$ctr" /tmp/promrelay-image-smoke.yaml /etc/promrelay/smoke.yaml >/dev/null
run promrelay check-config --config /etc/promrelay/smoke.yaml
buildah run --isolation chroot --user 10001:10001 "$ctr" -- promrelay --config /etc/promrelay/smoke.yaml &
server=$!
for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$port/-/healthy" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fsS "http://127.0.0.1:$port/-/healthy"
# An empty WriteRequest, snappy-compressed: a varint length 0 is one 0x00 byte.
code=$(printf '\x00' | curl -s -o /dev/null -w '%{http_code}' -X POST \
  -H 'Content-Type: application/x-protobuf' -H 'Content-Encoding: snappy' \
  --data-binary @- "http://127.0.0.1:$port/api/v1/write")
[[ "$code" == 204 ]] || { echo "write answered $code"; exit 1; }
# Not piped into grep -q: its early exit could fail curl under pipefail.
metrics=$(curl -fsS "http://127.0.0.1:$port/metrics")
grep -q '^promrelay_requests_total' <<<"$metrics" || { echo "no promrelay_requests_total in /metrics"; exit 1; }
# SIGTERM to promrelay itself (not to buildah): it must drain and exit 0.
pkill -TERM -f "$server_pattern" || { echo "promrelay is not running"; exit 1; }
wait "$server" || { echo "promrelay did not exit 0 on SIGTERM"; exit 1; }
echo "image smoke test passed"
