#!/usr/bin/env bash
# Make `prometheus`, `promtool` and `prometheus-pushgateway` available (Debian packages `prometheus` and
# `prometheus-pushgateway`), for the metrics tests and rule checks. Idempotent: does nothing when all are on PATH. Only the binaries are used: the package's own service is
# never started here (tests run their own server on 127.0.0.1 with a temp config and storage path).
set -euo pipefail
if command -v prometheus >/dev/null && command -v promtool >/dev/null && command -v prometheus-pushgateway >/dev/null; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# policy-rc.d 101: do not let the package start its systemd/init service during install.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends prometheus prometheus-pushgateway >/dev/null
command -v prometheus >/dev/null && command -v promtool >/dev/null && command -v prometheus-pushgateway >/dev/null
echo "prometheus: $(prometheus --version 2>&1 | head -1)"
echo "pushgateway: $(prometheus-pushgateway --version 2>&1 | head -1)"
