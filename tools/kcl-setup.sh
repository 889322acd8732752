#!/usr/bin/env bash
# Set up the KCL production path for development (idempotent and quick on re-runs; `make kcl` and `make test` run it).
#
#   1. amazon-kclpy is a declared dependency of wenu-stream (the `kcl` extra, pinned in constraints.txt); `make setup`
#      installs it from PyPI the supported way: its wheel build fetches the MultiLangDaemon jars from Maven Central
#      and ships them inside the package (amazon_kclpy/jars).
#   2. Those jars are copied into .kcl/jars: the classpath folder of the e2e tests and of the image layout.
#   3. java (a headless JRE) is installed with apt-get when missing and we are root.
#
# Exit codes: 0 ready, 1 a step failed (the message says which and how to fix it).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
JARS="$ROOT/.kcl/jars"

say() { echo "kcl-setup: $*" >&2; }
fail() { say "ERROR: $*"; exit 1; }

kclpy() {
  "$VENV/bin/python" - <<'PY'
import importlib.metadata as m, pathlib
import amazon_kclpy
print(m.version("amazon-kclpy"), pathlib.Path(amazon_kclpy.__file__).parent / "jars")
PY
}

ensure_java() {
  command -v java >/dev/null && return 0
  mkdir -p "$ROOT/.kcl"
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    say "installing a headless Java runtime with apt-get (openjdk-17-jre-headless), for the MultiLangDaemon"
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q openjdk-17-jre-headless; } \
      >"$ROOT/.kcl/apt.log" 2>&1 || fail "apt-get could not install openjdk-17-jre-headless (details in $ROOT/.kcl/apt.log)"
  fi
  command -v java >/dev/null || fail "java not found. Fix: apt-get install openjdk-17-jre-headless"
}

read -r VERSION SOURCE < <(kclpy 2>/dev/null) \
  || fail "amazon-kclpy is not installed in $VENV. Fix: make setup (it installs wenu-stream's kcl extra)"
ensure_java
stamp="$JARS/.from-amazon-kclpy-$VERSION"
if [[ ! -f "$stamp" ]]; then
  rm -rf "$JARS.tmp" && mkdir -p "$JARS.tmp"
  cp "$SOURCE"/*.jar "$JARS.tmp/" || fail "no jars in $SOURCE (reinstall amazon-kclpy: make setup)"
  touch "$JARS.tmp/$(basename "$stamp")"
  rm -rf "$JARS" && mv "$JARS.tmp" "$JARS"
fi
bash "$ROOT/tools/build-image.sh" check "$JARS"
say "ready: amazon-kclpy $VERSION with $(ls "$JARS" | grep -c '\.jar$') jars in $JARS. Run a consumer with:"
say "  java -cp '$JARS/*' software.amazon.kinesis.multilang.MultiLangDaemon -p properties/processing.properties"
