#!/usr/bin/env bash
# Container health check: GET /healthz on a port of the task: the argument, else WENU_METRICS_PORT (the
# exporter on the KCL path, the driver's own server with --native; the API passes its WENU_API_PORT).
# Pure bash (/dev/tcp): no interpreter start-up every 30 seconds.
# Exit 0 healthy, 1 not.
set -u
port="${1:-${WENU_METRICS_PORT:-9100}}"
{ exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || exit 1
printf 'GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
IFS= read -r -t 4 status <&3 || exit 1
[[ "$status" == HTTP/1.?\ 200* ]]
