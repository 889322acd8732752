#!/usr/bin/env bash
# Set up the KCL production path (idempotent; `make kcl` and `make test` run it).
#
#   1. amazon-kclpy (pinned, sha256-checked sdist) into .venv, Python code only. Its setup.py would
#      download the KCL jars at build time and fail the install when it cannot; we install its
#      package without that step and keep our own classpath (2.).
#   2. The MultiLangDaemon classpath from kcl/pom.xml into .kcl/jars with mvn (best effort: the
#      daemon is needed by the e2e test and production, not by the protocol tests). Pass
#      --require-jars (or set KCL_REQUIRE_JARS=1) to make a missing classpath an error.
#   3. Print the java command that runs the daemon.
#
# Stamps in .kcl/ make a second run a no-op. Exit codes: 0 ok, 1 a required step failed.
set -euo pipefail

KCLPY_VERSION=3.2.0
KCLPY_SHA256=62e81cc84714c920fe6aa5d61837b298fe7e01f6326dcb564b12ab8e6c4aca4e
KCL_VERSION=3.5.3  # the kcl.version of amazon-kclpy 3.2.0's pom.xml; kcl/pom.xml must agree

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
KCL_DIR="$ROOT/.kcl"
JARS="$KCL_DIR/jars"
REQUIRE_JARS="${KCL_REQUIRE_JARS:-0}"
[[ "${1:-}" == "--require-jars" ]] && REQUIRE_JARS=1

say() { echo "kcl-setup: $*" >&2; }
mkdir -p "$KCL_DIR"

grep -q "<kcl.version>$KCL_VERSION</kcl.version>" "$ROOT/kcl/pom.xml" || {
  say "kcl/pom.xml does not pin kcl.version $KCL_VERSION, the KCL that amazon-kclpy $KCLPY_VERSION expects."
  say "Fix: bump both together (KCLPY_VERSION/KCL_VERSION here and kcl/pom.xml)."
  exit 1
}

install_kclpy() {
  local installed
  installed="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("amazon-kclpy"))' 2>/dev/null || true)"
  if [[ "$installed" == "$KCLPY_VERSION" ]]; then
    return 0
  fi
  local work
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' RETURN
  local log="$KCL_DIR/pip.log"
  "$VENV/bin/python" -m pip download -q --no-deps --no-binary :all: -d "$work" "amazon-kclpy==$KCLPY_VERSION" \
    >"$log" 2>&1 || { say "pip could not download amazon-kclpy $KCLPY_VERSION (details in $log)"; return 1; }
  echo "$KCLPY_SHA256  $work/amazon_kclpy-$KCLPY_VERSION.tar.gz" | sha256sum -c --quiet - || {
    say "amazon-kclpy $KCLPY_VERSION sdist has an unexpected sha256; refusing to install it"; return 1; }
  tar -xzf "$work/amazon_kclpy-$KCLPY_VERSION.tar.gz" -C "$work"
  local src="$work/amazon_kclpy-$KCLPY_VERSION"
  grep -q "<kcl.version>$KCL_VERSION</kcl.version>" "$src/pom.xml" || {
    say "amazon-kclpy $KCLPY_VERSION expects another KCL than $KCL_VERSION (see its pom.xml)"; return 1; }
  # Build from a plain pyproject: same package and version, without the setup.py hook that fetches jars.
  rm "$src/setup.py" "$src/setup.cfg"
  cat > "$src/pyproject.toml" <<EOF
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "amazon-kclpy"
version = "$KCLPY_VERSION"
description = "amazon-kclpy $KCLPY_VERSION (Python package only; the KCL jars come from wenu-stream's .kcl/jars)"
dependencies = ["boto3"]

[tool.setuptools]
packages = ["amazon_kclpy", "amazon_kclpy.v2", "amazon_kclpy.v3", "amazon_kclpy.jars"]
EOF
  "$VENV/bin/python" -m pip install -q --no-deps "$src" >>"$log" 2>&1 || {
    say "pip could not install amazon-kclpy $KCLPY_VERSION (details in $log)"; return 1; }
  say "installed amazon-kclpy $KCLPY_VERSION into $VENV"
}

fetch_jars() {
  local stamp
  stamp="$JARS/.complete-$(md5sum "$ROOT/kcl/pom.xml" | cut -c1-8)"
  [[ -f "$stamp" ]] && return 0
  command -v mvn >/dev/null || { say "mvn not found (apt-get install maven)"; return 1; }
  command -v java >/dev/null || { say "java not found (apt-get install openjdk-17-jre-headless)"; return 1; }
  rm -rf "$JARS.tmp"
  local log="$KCL_DIR/mvn.log"
  # -DexcludeTransitive: the pom already lists the whole classpath at amazon-kclpy's pinned versions.
  if ! mvn -q -B -f "$ROOT/kcl/pom.xml" dependency:copy-dependencies \
      -DexcludeTransitive=true -DoutputDirectory="$JARS.tmp" >"$log" 2>&1; then
    say "could not fetch the KCL classpath with mvn (details in $log):"
    grep -m1 -o 'could not be resolved: [^ ]*:[^ ]*:[^ ]*:[^ ,:]*\(, [^ ]*:[^ ]*:[^ ]*:[^ ,:]*\)*' "$log" \
      | sed 's/^/kcl-setup:   /' >&2 || true
    rm -rf "$JARS.tmp"
    return 1
  fi
  rm -rf "$JARS" && mv "$JARS.tmp" "$JARS" && touch "$stamp"
  say "$(find "$JARS" -name '*.jar' | wc -l) jars in $JARS"
}

install_kclpy
if fetch_jars; then
  cat >&2 <<EOF
kcl-setup: run a consumer with:
  java -cp '$JARS/*' software.amazon.kinesis.multilang.MultiLangDaemon --properties-file properties/alarms.properties
kcl-setup: (--log-configuration logback.xml is optional; the child's stderr is re-logged by DrainChildSTDERRTask)
EOF
else
  rm -f "$JARS"/.complete-*
  if [[ "$REQUIRE_JARS" == 1 ]]; then
    exit 1
  fi
  say "WARNING: no MultiLangDaemon classpath; the e2e daemon test cannot run (protocol tests can)."
fi
