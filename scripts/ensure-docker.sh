#!/usr/bin/env bash
# Make sure a Docker engine answers, for the container handler's tests and benchmark:
# installs Debian's docker.io, busybox-static (the test image is built from it) and
# docker-registry (a private registry for the credential tests) when they are missing, and starts
# dockerd in the background when nothing answers on its socket. Idempotent.
set -euo pipefail

missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)  # private-registry tests
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "ensure-docker: need ${missing[*]}; install them (as root: apt-get install -y ${missing[*]})" >&2
    exit 1
  fi
  echo "ensure-docker: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }
if answers; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-docker: no Docker engine answers and only root can start dockerd here" >&2
  exit 1
fi
log="${TMPDIR:-/tmp}/watcher-dockerd.log"
echo "ensure-docker: starting dockerd (log: $log)" >&2
nohup dockerd >"$log" 2>&1 &
for _ in $(seq 1 60); do
  if answers; then
    exit 0
  fi
  sleep 1
done
echo "ensure-docker: dockerd did not answer within 60 s; see $log" >&2
tail -20 "$log" >&2 || true
exit 1
