#!/usr/bin/env bash
# Container entrypoint: one image, two applications, two engines, and one-off commands.
#
#   entrypoint.sh [alarms|processing] [--native]
#   entrypoint.sh -- COMMAND [ARGS...]        e.g. -- wenu-stream serve api, -- wenu-stream warehouse load
#
# The application is the first argument, else $WENU_APP. The engine is the KCL MultiLangDaemon (the
# production default) or, with --native, the in-process asyncio driver (`wenu-stream run`). After `--`,
# the command runs (exec) with the task's secrets in place, as below, and nothing else.
#
# KCL engine, in this order (everything that can fail on configuration fails before step 3):
#   1. check: the app name, the configuration (`wenu-stream check-config`), java, the KCL classpath;
#   2. render properties/<app>.properties for this environment (region, stream, application name, and
#      the SDK-standard AWS_ENDPOINT_URL_* when set, as on the local stack) into $KCL_WORK and check it
#      (the daemon silently ignores unknown keys);
#   3. wipe and create $PROMETHEUS_MULTIPROC_DIR: stale files of a previous run would be summed into
#      this run's counters, and the client library must see an empty directory at start;
#   4. start ONE exporter (`wenu-stream serve-metrics`) that serves /metrics of every shard process
#      and /healthz (the container health check);
#   5. start the daemon, which starts one `python3 consumers/<app>.py` per shard it leases;
#   6. forward SIGTERM/SIGINT to the daemon (it gives its shard processes shutdownGraceMillis to
#      flush and checkpoint) and exit when either process exits: 0 when the daemon ended a stop we
#      forwarded, else the daemon's exit code, or 1 if the exporter died (the task is then replaced
#      rather than left running without metrics). Everything this script says is a JSON line on stderr.
#
# Environment (beyond WENU_* configuration, which the Python side reads):
#   APP_ROOT                 image root holding consumers/, properties/, .kcl/jars (default: this repo)
#   KCL_JARS                 the MultiLangDaemon classpath folder (default $APP_ROOT/.kcl/jars)
#   KCL_WORK                 where the rendered properties go (default /tmp/wenu-kcl)
#   PROMETHEUS_MULTIPROC_DIR shard processes' metric files (default /tmp/wenu-metrics)
#   JAVA_OPTS                JVM flags (default: a fixed heap, see deploy/ecs/README.md)
#   KCL_OVERRIDES            KCL properties for this environment, space-separated key=value pairs
#                            (e.g. "failoverTimeMillis=20000 shutdownGraceMillis=25000"); rendered over
#                            the file's values and checked like them (an unknown key exits 2)
#   KEYRING_KMS_JSON         the KMS-wrapped key-ring document itself (an ECS secret); written to a
#                            0600 file under /tmp that WENU_KEYRING_KMS_FILE then names
#   CATALOG_DB_SECRET_JSON   the catalog database's RDS secret (an ECS secret, JSON); WENU_CATALOG_URL is
#                            composed from it (deploy/ecs/catalog_db.py url; CATALOG_DB_SSLMODE, default
#                            require), so a rotated password reaches every new task
# Exit codes: 2 bad arguments or configuration (nothing started), else the engine's own code.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
APP_ROOT="${APP_ROOT:-$(cd "$HERE/../.." && pwd)}"
KCL_JARS="${KCL_JARS:-$APP_ROOT/.kcl/jars}"
KCL_WORK="${KCL_WORK:-/tmp/wenu-kcl}"
JAVA_OPTS="${JAVA_OPTS:--Xms256m -Xmx384m -XX:+UseSerialGC -XX:+ExitOnOutOfMemoryError}"
DAEMON_CLASS=software.amazon.kinesis.multilang.MultiLangDaemon

# stderr carries JSON lines only (ours and the shard processes'), one event each, like structlog's.
json() { local s=$1 bs='\' q='"'; s=${s//"$bs"/"$bs$bs"}; s=${s//"$q"/"$bs$q"}; printf '%s' "${s//$'\t'/ }"; }
say() { printf '{"event": "%s", "level": "%s", "logger": "entrypoint"}\n' "$(json "$*")" "${LEVEL:-info}" >&2; }
fail() { LEVEL=error say "$1; fix: $2"; exit 2; }

# Secrets arrive as values of ECS secrets; the application reads files and URLs.
secrets() {
  # The wrapped key ring: useless without kms:Decrypt, but the file is still private to this user.
  if [[ -n "${KEYRING_KMS_JSON:-}" ]]; then
    keyring_dir="$(mktemp -d /tmp/wenu-keyring.XXXXXX)"
    (umask 077 && printf '%s' "$KEYRING_KMS_JSON" > "$keyring_dir/keyring.kms.json")
    export WENU_KEYRING_KMS_FILE="$keyring_dir/keyring.kms.json"
    unset KEYRING_KMS_JSON
  fi
  if [[ -n "${CATALOG_DB_SECRET_JSON:-}" ]]; then
    [[ -z "${WENU_CATALOG_URL:-}" ]] \
      || fail "both WENU_CATALOG_URL and CATALOG_DB_SECRET_JSON are set" "give the task one of them"
    WENU_CATALOG_URL="$(python3 "$HERE/catalog_db.py" url)" || exit 2
    export WENU_CATALOG_URL
    unset CATALOG_DB_SECRET_JSON
  fi
}

if [[ "${1:-}" == "--" ]]; then
  shift
  [[ $# -gt 0 ]] || fail "no command after --" "pass a command, e.g. -- wenu-stream serve api"
  secrets
  exec "$@"
fi

app="${WENU_APP:-}"
engine=kcl
for arg in "$@"; do
  case "$arg" in
    alarms|processing) app="$arg" ;;
    --native) engine=native ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) fail "unknown argument '$arg'" "pass alarms or processing, and optionally --native" ;;
  esac
done
[[ -n "$app" ]] || fail "no application given" "pass alarms or processing as the first argument, or set WENU_APP"
export WENU_APP="$app"

secrets

# 1. Configuration first: a typo in a WENU_* variable stops the task here, with the message in the log.
wenu-stream check-config >/dev/null || exit 2

if [[ "$engine" == native ]]; then
  # One process serves its own registry; the multiprocess directory would only slow it down.
  unset PROMETHEUS_MULTIPROC_DIR
  exec wenu-stream run --app "$app"
fi

command -v java >/dev/null || fail "java not found" "use the wenu-stream image (it ships a JRE), or pass --native"
compgen -G "$KCL_JARS/amazon-kinesis-client-multilang-*.jar" >/dev/null \
  || fail "no KCL MultiLangDaemon classpath in $KCL_JARS" "build the image with tools/build-image.sh (it fetches the jars)"
[[ -n "${WENU_METRICS_PORT:-}" && "${WENU_METRICS_PORT}" != 0 ]] \
  || fail "WENU_METRICS_PORT is not set" "set the port the exporter serves /metrics and /healthz on, e.g. 9100"

# 2. Properties for this environment; the file in the image keeps its comments and KCL defaults.
mkdir -p "$KCL_WORK"
properties="$KCL_WORK/$app.properties"
python3 - "$APP_ROOT" "$app" "$properties" \
  "regionName=${AWS_REGION:-${AWS_DEFAULT_REGION:-}}" \
  "streamName=${WENU_KINESIS_STREAM:-}" \
  "applicationName=${WENU_LEASE_TABLE:-}" \
  "kinesisEndpoint=${AWS_ENDPOINT_URL_KINESIS:-${AWS_ENDPOINT_URL:-}}" \
  "dynamoDBEndpoint=${AWS_ENDPOINT_URL_DYNAMODB:-${AWS_ENDPOINT_URL:-}}" \
  ${KCL_OVERRIDES:-} <<'PY' || exit 2  # word-split on purpose: one key=value per word
import json
import sys
from pathlib import Path

from wenu_stream.drivers.kcl.properties import check_properties, render_properties

root, app, out, *pairs = sys.argv[1:]
for pair in (p for p in pairs if "=" not in p):
    event = f"KCL_OVERRIDES: {pair!r} is not key=value. Fix: write each property as key=value, space-separated"
    print(json.dumps({"event": event, "level": "error", "logger": "entrypoint"}), file=sys.stderr)
    sys.exit(2)
overrides = dict(p.split("=", 1) for p in pairs if not p.endswith("="))  # unset: keep the file's value
Path(out).write_text(render_properties(app, overrides, root=root), encoding="utf-8")
problems = check_properties(out, cwd=root)
for problem in problems:
    print(json.dumps({"event": f"{out}: {problem}", "level": "error", "logger": "entrypoint"}), file=sys.stderr)
sys.exit(2 if problems else 0)
PY

# 3. A fresh multiprocess directory (after every check above: a refused start leaves it as it was).
export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-/tmp/wenu-metrics}"
rm -rf "$PROMETHEUS_MULTIPROC_DIR"
mkdir -p "$PROMETHEUS_MULTIPROC_DIR"

# 4. One exporter for the whole task.
wenu-stream serve-metrics --port "$WENU_METRICS_PORT" &
exporter=$!

# 5. The daemon, from the image root: executableName (python3 consumers/<app>.py) is relative to it.
cd "$APP_ROOT"
# shellcheck disable=SC2086  # JAVA_OPTS is a list of flags
java $JAVA_OPTS -cp "$KCL_JARS/*" "$DAEMON_CLASS" \
  --properties-file "$properties" --log-configuration "$HERE/logback.xml" &
daemon=$!
say "started $app: KCL daemon pid $daemon, metrics exporter pid $exporter on port $WENU_METRICS_PORT"

# 6. Forward stop signals to the daemon; the exporter keeps serving until the daemon is gone.
stopping=""
trap 'stopping=1; kill -TERM "$daemon" 2>/dev/null || true' TERM INT
while true; do
  ended=""
  set +e
  wait -n -p ended "$daemon" "$exporter"
  code=$?
  set -e
  [[ -z "${ended:-}" ]] && continue  # a trapped signal interrupted wait; keep waiting
  if [[ "$ended" == "$daemon" ]]; then
    kill -TERM "$exporter" 2>/dev/null || true
    wait "$exporter" 2>/dev/null || true
    # The JVM reports 143 (128 + SIGTERM) after the shutdown hook ran, even when the graceful shutdown
    # completed: on a stop we asked for, that is the expected end of the task, not a failure.
    if [[ -n "$stopping" && "$code" == 143 ]]; then
      say "KCL daemon stopped on request (shard processes checkpointed what was durable; the rest replays)"
      exit 0
    fi
    LEVEL=$([[ "$code" == 0 ]] && echo info || echo error) say "KCL daemon exited with code $code"
    exit "$code"
  fi
  say "metrics exporter exited with code $code; stopping the daemon so the task is replaced"
  kill -TERM "$daemon" 2>/dev/null || true
  wait "$daemon" 2>/dev/null || true
  exit 1
done
