#!/usr/bin/env bash
# Set up the KCL production path (idempotent and quick on re-runs; `make kcl` and `make test` run it).
#
#   1. amazon-kclpy (pinned, sha256-checked sdist) into .venv, Python code only. Its setup.py would
#      download the KCL jars itself at build time; we install the same package without that hook and
#      keep our own classpath (2.).
#   2. The MultiLangDaemon classpath of kcl/pom.xml into .kcl/jars with mvn (java and mvn are installed
#      with apt-get when missing and we are root). Every jar the pom names must be there, or this fails:
#      `make test` runs the e2e test against the real daemon.
#   3. Print the java command that runs the daemon.
#
# A stamp per pom.xml content in .kcl/jars makes a second run a file check. Exit codes: 0 ok, 1 a step failed.
set -euo pipefail

KCLPY_VERSION=3.1.3
KCLPY_SHA256=146bf4a85c79eb6d3c842075d7fe2a1ffad3f2944c24db202add5e2a875259c9
KCL_VERSION=3.1.3  # the kcl.version of amazon-kclpy 3.1.3's pom.xml; kcl/pom.xml must agree

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
POM="$ROOT/kcl/pom.xml"
KCL_DIR="$ROOT/.kcl"
JARS="$KCL_DIR/jars"

say() { echo "kcl-setup: $*" >&2; }
fail() { say "ERROR: $*"; exit 1; }
mkdir -p "$KCL_DIR"

grep -q "<kcl.version>$KCL_VERSION</kcl.version>" "$POM" ||
  fail "kcl/pom.xml does not pin kcl.version $KCL_VERSION, the KCL that amazon-kclpy $KCLPY_VERSION expects. Fix: bump both together (KCLPY_VERSION/KCL_VERSION here and kcl/pom.xml)."

install_kclpy() {
  local installed
  installed="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("amazon-kclpy"))' 2>/dev/null || true)"
  [[ "$installed" == "$KCLPY_VERSION" ]] && return 0
  local work log="$KCL_DIR/pip.log"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' RETURN
  "$VENV/bin/python" -m pip download -q --no-deps --no-binary :all: -d "$work" "amazon-kclpy==$KCLPY_VERSION" \
    >"$log" 2>&1 || fail "pip could not download amazon-kclpy $KCLPY_VERSION (details in $log)"
  echo "$KCLPY_SHA256  $work/amazon_kclpy-$KCLPY_VERSION.tar.gz" | sha256sum -c --quiet - ||
    fail "amazon-kclpy $KCLPY_VERSION sdist has an unexpected sha256; refusing to install it"
  tar -xzf "$work/amazon_kclpy-$KCLPY_VERSION.tar.gz" -C "$work"
  local src="$work/amazon_kclpy-$KCLPY_VERSION"
  grep -q "<kcl.version>$KCL_VERSION</kcl.version>" "$src/pom.xml" ||
    fail "amazon-kclpy $KCLPY_VERSION expects another KCL than $KCL_VERSION (see its pom.xml)"
  # Build from a plain pyproject: same package and version, without the setup.py hook that fetches jars.
  rm "$src/setup.py" "$src/setup.cfg"
  cat > "$src/pyproject.toml" <<PYPROJECT
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
PYPROJECT
  "$VENV/bin/python" -m pip install -q --no-deps "$src" >>"$log" 2>&1 ||
    fail "pip could not install amazon-kclpy $KCLPY_VERSION (details in $log)"
  say "installed amazon-kclpy $KCLPY_VERSION into $VENV"
}

ensure_tools() {
  command -v mvn >/dev/null && command -v java >/dev/null && return 0
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    say "installing java and maven with apt-get"
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q openjdk-17-jre-headless maven; } \
      >"$KCL_DIR/apt.log" 2>&1 || fail "apt-get could not install openjdk-17-jre-headless maven (details in $KCL_DIR/apt.log)"
  fi
  command -v java >/dev/null || fail "java not found. Fix: apt-get install openjdk-17-jre-headless"
  command -v mvn >/dev/null || fail "mvn not found. Fix: apt-get install maven"
}

# The jar file names the pom asks for (artifactId-version.jar), with its properties substituted.
expected_jars() {
  "$VENV/bin/python" - "$POM" <<'PY'
import sys
import xml.etree.ElementTree as ET

ns = "{http://maven.apache.org/POM/4.0.0}"
root = ET.parse(sys.argv[1]).getroot()
props = {f"${{{c.tag[len(ns):]}}}": c.text for c in root.find(ns + "properties")}
for dep in root.iter(ns + "dependency"):
    artifact, version = dep.find(ns + "artifactId").text, dep.find(ns + "version").text
    print(f"{artifact}-{props.get(version, version)}.jar")
PY
}

missing_jars() {
  local dir="$1" jar
  while read -r jar; do [[ -f "$dir/$jar" ]] || echo "$jar"; done < <(expected_jars)
}

fetch_jars() {
  local stamp
  stamp="$JARS/.complete-$(md5sum "$POM" | cut -c1-8)"
  [[ -f "$stamp" ]] && [[ -z "$(missing_jars "$JARS")" ]] && return 0
  ensure_tools
  rm -rf "$JARS.tmp"
  local log="$KCL_DIR/mvn.log"
  # -DexcludeTransitive: the pom already lists the whole classpath at amazon-kclpy's pinned versions.
  if ! mvn -q -B -f "$POM" dependency:copy-dependencies \
      -DexcludeTransitive=true -DoutputDirectory="$JARS.tmp" >"$log" 2>&1; then
    grep -o 'could not be resolved: .*\|Could not [a-z]* [^:]*: [^ ]*' "$log" | head -3 | sed 's/^/kcl-setup:   /' >&2 || true
    rm -rf "$JARS.tmp"
    fail "mvn could not fetch the KCL $KCL_VERSION classpath (details in $log)"
  fi
  local missing
  missing="$(missing_jars "$JARS.tmp")"
  [[ -z "$missing" ]] || fail "mvn finished but these jars of kcl/pom.xml are missing: $(echo $missing)"
  rm -rf "$JARS" && mv "$JARS.tmp" "$JARS" && touch "${stamp/$JARS.tmp/$JARS}"
  say "$(find "$JARS" -name '*.jar' | wc -l) jars in $JARS"
}

install_kclpy
fetch_jars
[[ -f "$JARS/amazon-kinesis-client-multilang-$KCL_VERSION.jar" ]] || fail "no MultiLangDaemon jar in $JARS"
say "ready: KCL $KCL_VERSION ($(ls "$JARS" | grep -c '\.jar$') jars), amazon-kclpy $KCLPY_VERSION. Run a consumer with:"
say "  java -cp '$JARS/*' software.amazon.kinesis.multilang.MultiLangDaemon -p properties/processing.properties"
