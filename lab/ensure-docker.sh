#!/usr/bin/env bash
# Make sure a Docker engine answers: reuse one that runs, otherwise install Debian's docker.io if
# needed and start dockerd. On these machines the engine must be started with lowered default
# ulimits: raising a limit is not permitted here, and containers fail with
# "setrlimit RLIMIT_NOFILE: Operation not permitted" without them (docs/facts.md).
set -euo pipefail
log=${DOCKERD_LOG:-/var/log/prefect-fleet-dockerd.log}

if docker info >/dev/null 2>&1; then
  echo "ensure-docker: reusing the running Docker engine" >&2
  exit 0
fi
if ! command -v dockerd >/dev/null 2>&1; then
  echo "ensure-docker: installing docker.io" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >&2
fi
if [[ -d /run/systemd/system ]]; then
  systemctl start docker.service
else
  echo "ensure-docker: starting dockerd (log: $log)" >&2
  setsid dockerd \
    --default-ulimit nofile=16384:16384 \
    --default-ulimit nproc=8192:8192 \
    >>"$log" 2>&1 </dev/null &
fi
for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && { echo "ensure-docker: engine is up" >&2; exit 0; }
  sleep 1
done
echo "ensure-docker: the Docker engine did not answer within 60 s; see $log" >&2
exit 1
