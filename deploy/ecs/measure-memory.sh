#!/usr/bin/env bash
# Measure the peak memory (max RSS) of one native consumer process per shard count, on the local stack.
#
#   bash deploy/ecs/measure-memory.sh [APP] [SHARD_COUNTS...]    e.g. bash deploy/ecs/measure-memory.sh processing 1 4
#
# For each shard count: start the local AWS stack (moto + kinesalite on 127.0.0.1), provision the stream
# with that many shards, import the simulated fleet's catalog, backfill DEVICES meters x DURATION seconds of
# readings, then run `wenu-stream run --app APP --idle-exit 8` under GNU time and print its maximum RSS
# and the records it handled. The difference between shard counts is the memory a shard adds; the
# 1-shard number is also the size of one KCL child process (same runtime, one shard). Nothing is left
# running. Results go to stdout as one line per run; logs stay in the scratch folder on failure.
set -euo pipefail

APP="${1:-processing}"; shift || true
COUNTS=("${@:-1 4}")
DEVICES="${DEVICES:-400}"
DURATION="${DURATION:-600}"
INTERVAL="${INTERVAL:-5}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="${BIN:-$ROOT/.venv/bin}"

measure() {
  local shards="$1" work
  set +e
  work="$(mktemp -d -t wenu-mem-XXXX)"
  (
    set -euo pipefail
    cd "$work"
    eval "$("$BIN/wenu-stream" emulator start --run-dir "$work/stack")"
    trap '"$BIN/wenu-stream" emulator stop --run-dir "$work/stack" >/dev/null 2>&1 || true' EXIT
    "$BIN/python" - > keyring.json <<'PY'
import base64, json, os
print(json.dumps({k: base64.b64encode(os.urandom(32)).decode() for k in ("fleet-a", "fleet-b")}))
PY
    export WENU_KEYRING_FILE="$work/keyring.json" WENU_CATALOG_URL="sqlite:///$work/catalog.db" WENU_LOG_LEVEL=warning
    "$BIN/wenu-stream" provision --shards "$shards" >/dev/null
    "$BIN/wenu-stream" simulate --devices "$DEVICES" --interval "$INTERVAL" --duration "$DURATION" --seed 7 \
      --no-pace --aggregate 20 --catalog-out catalog.json > simulate.out 2> simulate.log
    "$BIN/wenu-stream" catalog import catalog.json >/dev/null
    /usr/bin/time -f '%M' -o rss.kb "$BIN/wenu-stream" run --app "$APP" --idle-exit 8 2> run.log
    echo "app=$APP shards=$shards devices=$DEVICES readings=$(( DEVICES * DURATION / INTERVAL ))" \
         "max_rss_mib=$(( $(tail -1 rss.kb) / 1024 ))" "simulator: $(tail -1 simulate.out | cut -c1-160)"
  )
  local rc=$?  # the subshell's own `set -e` holds only outside an && / || list, hence the separate check
  if [[ $rc != 0 ]]; then echo "measure: run with $shards shard(s) failed; logs in $work" >&2; return 1; fi
  rm -rf "$work"
}

for n in ${COUNTS[@]}; do measure "$n" || exit 1; done
