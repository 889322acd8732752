"""The demo's summary: what the consumers did beside what the simulation and the product's rules say they must.

Every comparison that does not hold is returned as a sentence, so the demo can
end with one verdict line (and exit 1 when something is off).
"""

from __future__ import annotations

import io
import json
import operator
import time
from typing import Any

import msgspec

from wenu_stream.cli.output import emit
from wenu_stream.config import Config
from wenu_stream.devtools.demo.progress import Progress


def counts(config: Config, expected: dict[str, Any], progress: Progress) -> list[str]:
    """Records, messages, duplicates and dead letters by reason: consumer beside simulator."""
    from wenu_stream.ops.report import dead_letter_counts, shard_totals, sum_totals

    totals = sum_totals(shard_totals(config))
    want_rejected: dict[str, int] = expected.get("rejected", {})
    rows: list[tuple[str, int, int | None]] = [
        ("Kinesis records read", totals.records, expected.get("records")),
        ("messages accepted", totals.accepted, expected.get("accepted")),
        ("duplicates dropped", totals.duplicates + totals.stale, expected.get("duplicates")),
        ("dead-lettered", sum(totals.rejected.values()), sum(want_rejected.values())),
    ]
    rows += [(f"  {reason}", totals.rejected.get(reason, 0), want_rejected.get(reason, 0))
             for reason in sorted(set(totals.rejected) | set(want_rejected))]  # fmt: skip
    progress.say(f"    {'':28}{'consumer':>10}{'simulator expects':>20}")
    off = []
    for name, got, want in rows:
        mark = "" if want is None or got == want else "   <- differs"
        progress.say(f"    {name:28}{got:>10}{'' if want is None else want:>20}{mark}")
        if mark:
            off.append(f"{name.strip()}: {got} read, {want} expected")
    progress.say(f"    dead letters in S3 by reason: {json.dumps(dead_letter_counts(config))}")
    return off


def alarms(
    config: Config, got: list[dict[str, Any]], expected: list[dict[str, Any]], progress: Progress
) -> list[str]:
    """The notifications that reached the queue beside those the rules call for, each marked.

    Expected: the anomalies' transitions (known from the simulation) plus what the end of the run raises
    under the rules (``no_data`` on a series whose shard clock passed its last reading + ``after_s`` before
    the consumer stopped; see ``simulate.anomalies.silence_after_run``).
    """
    key = operator.itemgetter("rule", "series", "state", "transition_id")
    after_run = [msgspec.to_builtins(e) for e in end_of_run(config)]
    want = {key(e): ("anomaly", e) for e in expected} | {key(e): ("end of run", e) for e in after_run}
    have = {key(b): b for b in got}
    progress.say(
        f"    alarm notifications from the SQS queue: {len(got)}; the rules call for {len(want)} "
        f"({len(expected)} from the anomalies, {len(after_run)} from the run's end)"
    )
    rows = sorted({**{k: w[1] for k, w in want.items()}, **have}.items(), key=lambda kv: (kv[1]["at"], kv[0]))
    off, table = [], []
    for k, body in rows:
        why = want[k][0] if k in want else "NOT called for by the rules"
        if k not in have:
            why = f"{why}: NOT received"
            off.append(f"{body['rule']} {body['state']} on {body['series']} was not received")
        elif k not in want:
            off.append(f"{body['rule']} {body['state']} on {body['series']} was not called for")
        at = time.strftime("%H:%M:%S", time.gmtime(body["at"] / 1000))
        table.append({"rule": body["rule"], "series": body["series"], "severity": body["severity"],
                      "state": body["state"], "at (UTC)": at, "why": why})  # fmt: skip
    out = io.StringIO()
    emit(table, "table", out=out)
    for line in out.getvalue().splitlines():
        progress.say("      " + line)
    if after_run:
        progress.say(
            "      (end of run: the simulated meters stop with the simulation; a consumer that keeps running "
            "sees them fall silent and its no_data rule fires, as it would in production)"
        )
    return off


def end_of_run(config: Config) -> list[Any]:
    """The ``no_data`` firings the end of the run calls for.

    For every series a ``no_data`` rule watches: its last reading and its shard from the warehouse
    (every accepted reading, loaded before this runs), and how far the alarms application's clock of
    that shard got from the shard's clock item; the rule does the rest (``silence_after_run``).
    """
    import boto3
    import psycopg

    from wenu_stream.alarms.rules import NoDataRule
    from wenu_stream.catalog.store import CatalogStore
    from wenu_stream.devtools.simulate.anomalies import silence_after_run

    with CatalogStore(config.catalog.url, create=False) as store:
        snapshot = store.snapshot()
    watched = {s: [r for r in snapshot.rules_for(s) if isinstance(r, NoDataRule)] for s in snapshot.series}
    watched = {s: rules for s, rules in watched.items() if rules}
    if not watched:
        return []
    schema = config.warehouse.schema
    with psycopg.connect(config.warehouse.dsn, autocommit=True) as conn:
        last = conn.execute(
            f"SELECT series, max(t_ms), (array_agg(shard_id ORDER BY t_ms DESC))[1] FROM {schema}.readings "  # noqa: S608 - the schema is a validated identifier
            "WHERE series = ANY(%s) GROUP BY series",
            (sorted(watched),),
        ).fetchall()
    ddb, out = boto3.client("dynamodb"), []
    for series, last_t, shard in last:
        pk = f"@shard#{config.kinesis.stream}#{shard}"
        clock = ddb.get_item(TableName=config.alarms.state_table, Key={"pk": {"S": pk}}, ConsistentRead=True)
        watermark = clock.get("Item", {}).get("watermark", {}).get("N")
        for rule in watched[series]:
            found = silence_after_run(
                rule, series, int(last_t), None if watermark is None else int(watermark)
            )
            if found is not None:
                out.append(found)
    return out


def stats(config: Config, series_list: list[tuple[str, str]], progress: Progress) -> None:
    """The newest Company Stats windows of a few series, as `wenu-stream stats query` shows them."""
    from wenu_stream.catalog.store import CatalogStore
    from wenu_stream.cli.stats import columns, fetch, row

    with CatalogStore(config.catalog.url, create=False) as store:
        known = store.snapshot().series
    now_ms = int(time.time() * 1000)
    for series, width in series_list:
        info = known.get(series)
        rows = [
            row(i)
            for i in fetch(
                config.stats.table, series, width, now_ms - 86_400_000, now_ms + 3_600_000, now_ms // 1000
            )
        ]
        progress.say(f"    `wenu-stream stats query --series {series} --window {width} --since 24h`:")
        out = io.StringIO()
        zone = (info.timezone if width in ("1d", "1mo") else "UTC") if info else ""
        emit(rows[-3:], "table", columns(rows, info.unit if info else "", zone), out=out)
        for line in out.getvalue().splitlines():
            progress.say("      " + line)


def warehouse(config: Config, progress: Progress) -> list[str]:
    """Load the staged readings into the local PostgreSQL warehouse twice: the second load must change nothing."""
    from wenu_stream.cli.warehouse import _run
    from wenu_stream.warehouse.loader import load_pending, status

    def load() -> dict[str, Any]:
        done = _run(
            config, lambda s3, t: load_pending(s3, t, bucket=config.sinks.bucket, config=config.warehouse)
        )
        return dict(msgspec.to_builtins(done))

    with progress.timed("loading the staged readings into PostgreSQL"):
        loaded = load()
    again = sum(m.get("rows_inserted", 0) for m in load().get("manifests", []))
    counts = _run(config, lambda s3, t: status(s3, t, bucket=config.sinks.bucket, config=config.warehouse))
    progress.say(
        f"    warehouse: {len(loaded.get('manifests', []))} manifest(s) loaded; a second load inserted {again} rows; "
        f"status: {json.dumps(counts)}"
    )
    return [] if again == 0 else [f"a second warehouse load inserted {again} rows"]


def api(url: str, token: str, progress: Progress) -> None:
    """What the API says about the same run: the catalog version and the firing alarms."""
    import httpx

    headers = {"Authorization": f"Bearer {token}"}
    versions = httpx.get(f"{url}/api/v1/catalog/versions", headers=headers, timeout=30).json()["items"]
    firing = httpx.get(f"{url}/api/v1/alarms", params={"state": "firing"}, headers=headers, timeout=30).json()
    progress.say(
        f"    API {url}: catalog version {versions[0]['version']} by {versions[0]['author']} "
        f"({versions[0]['reason']}); {len(firing['items'])} firing alarm instance(s) at /api/v1/alarms?state=firing"
    )
