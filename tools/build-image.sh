#!/usr/bin/env bash
# The build steps of the container image (Dockerfile), runnable without Docker.
#
#   tools/build-image.sh venv   DIR          a virtualenv at DIR with wenu-stream and its kcl extra (amazon-kclpy,
#                                            whose package carries the MultiLangDaemon jars), pinned by constraints.txt
#   tools/build-image.sh layout DIR [JARS]   the /app tree into DIR: consumers/, properties/, deploy/ecs/ runtime
#                                            files and the classpath JARS (default .kcl/jars), checked
#   tools/build-image.sh check  JARS         check that JARS is a complete MultiLangDaemon classpath
#   tools/build-image.sh local  DIR          what `make test` runs: check .kcl/jars (from `make kcl`), build the
#                                            wheel into DIR/wheels, lay out DIR/app, check the result
#
# Each Dockerfile stage calls one mode, so the image and this script cannot drift. Exit codes: 0 done,
# 1 a step failed (the message says which and how to fix it), 2 bad usage.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DAEMON_CLASS="software/amazon/kinesis/multilang/MultiLangDaemon.class"
PYTHON="${PYTHON:-python3}"
# Artifacts without which the daemon cannot start or reach Kinesis, DynamoDB and CloudWatch.
REQUIRED="amazon-kinesis-client amazon-kinesis-client-multilang kinesis dynamodb cloudwatch netty-nio-client logback-classic"

say() { echo "build-image: $*" >&2; }
fail() { say "$*"; exit 1; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

# A classpath is complete when it has every required artifact and the daemon's class.
check_jars() {
  local dir="$1" artifact missing="" multilang
  [[ -d "$dir" ]] || fail "no KCL classpath at $dir (fix: make kcl)"
  for artifact in $REQUIRED; do
    compgen -G "$dir/$artifact-[0-9]*.jar" >/dev/null || missing="$missing $artifact"
  done
  [[ -z "$missing" ]] || fail "$dir has $(find "$dir" -maxdepth 1 -name '*.jar' | wc -l) jars but lacks:$missing (fix: make kcl)"
  multilang="$(find "$dir" -maxdepth 1 -name 'amazon-kinesis-client-multilang-*.jar' | head -1)"
  "$PYTHON" -c 'import sys, zipfile; sys.exit(sys.argv[2] not in zipfile.ZipFile(sys.argv[1]).namelist())' \
    "$multilang" "$DAEMON_CLASS" || fail "$multilang has no $DAEMON_CLASS"
}

do_venv() {
  local venv="$1"
  "$PYTHON" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --no-cache-dir --upgrade pip
  "$venv/bin/python" -m pip install -q --no-cache-dir -c "$ROOT/constraints.txt" "$ROOT[kcl]"
  check_jars "$("$venv/bin/python" -c 'import amazon_kclpy, pathlib; print(pathlib.Path(amazon_kclpy.__file__).parent / "jars")')"
  "$venv/bin/wenu-stream" --version >&2
}

do_layout() {
  local out="$1" jars="${2:-$ROOT/.kcl/jars}"
  check_jars "$jars"
  rm -rf "$out" && mkdir -p "$out/deploy/ecs" "$out/.kcl"
  cp -r "$ROOT/consumers" "$ROOT/properties" "$out/"
  for f in entrypoint.sh healthcheck.sh logback.xml; do
    install -m 0755 "$ROOT/deploy/ecs/$f" "$out/deploy/ecs/$f"
  done
  chmod 0644 "$out/deploy/ecs/logback.xml"
  mkdir -p "$out/.kcl/jars" && cp "$jars"/*.jar "$out/.kcl/jars/"
  find "$out" -name '__pycache__' -prune -exec rm -rf {} +
  say "laid out $out: $(find "$out" -type f | wc -l) files"
}

do_local() {
  local out="$1"
  mkdir -p "$out"
  out="$(cd "$out" && pwd)"
  check_jars "$ROOT/.kcl/jars"
  rm -rf "$out/wheels"
  # Isolated build, as in the image: pip brings pyproject's build requirements (PyPI, then its cache).
  "$PYTHON" -m pip wheel -q --no-deps -w "$out/wheels" "$ROOT" >&2
  local wheel
  wheel="$(find "$out/wheels" -name 'wenu_stream-*.whl' | head -1)"
  [[ -n "$wheel" ]] || fail "pip built no wenu_stream wheel in $out/wheels"
  "$PYTHON" - "$wheel" <<'PY' || fail "the wheel lacks the package or its wenu-stream entry point"
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
entry = next(n for n in names if n.endswith("entry_points.txt"))
text = zipfile.ZipFile(sys.argv[1]).read(entry).decode()
sys.exit(not ("wenu_stream/cli/main.py" in names and "wenu-stream = wenu_stream.cli.main:main" in text))
PY
  do_layout "$out/app"
  say "local build done: $(basename "$wheel"), app tree in $out/app"
}

[[ $# -eq 2 || ( $# -eq 3 && "$1" == layout ) ]] || usage
case "$1" in
  check) check_jars "$2" ;;
  venv) do_venv "$2" ;;
  layout) do_layout "$2" "${3:-}" ;;
  local) do_local "$2" ;;
  *) usage ;;
esac
