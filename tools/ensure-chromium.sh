#!/usr/bin/env bash
# Make Debian's chromium available at /usr/bin/chromium for the backoffice's browser tests (Playwright for Python
# drives it through executable_path; `playwright install` downloads are not used). Idempotent: does nothing when
# it is there. Exit codes: 0 ready, 1 it could not be installed.
set -euo pipefail
CHROMIUM=/usr/bin/chromium
if [ -x "$CHROMIUM" ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
[ -x "$CHROMIUM" ] || { echo "ensure-chromium: chromium is not at $CHROMIUM after apt-get install" >&2; exit 1; }
echo "chromium: $($CHROMIUM --version 2>/dev/null | head -1)"
