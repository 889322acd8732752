"""Reads of what the workers wrote, shared by the CLI and the API (sync boto3 clients passed in; edge).

- stats windows of a series: one DynamoDB Query on ``<series>#<window>`` (pages
  by ``LastEvaluatedKey``), never an expired item, with the windows the series'
  state item holds newer than their own items (``stats.publish_s``: open windows
  are written to their items at most that often, the state item at every commit);
- the newest window of many series (their latest values), the same way;
- alarm instances (a Scan of the state table, filtered) and one instance;
- a series' transitions (a Query of the ledger), with their publication status;
- ack and shelve written on the instance item (the worker's conditional
  ``UpdateItem`` sets only its own attributes, so they survive its writes).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import msgspec
from botocore.exceptions import ClientError

from wenu_stream.aws.alarm_state import instance_pk
from wenu_stream.aws.common import Item, is_conditional_failure
from wenu_stream.aws.dead_letters import Cursor, iter_letters
from wenu_stream.stats.aggregates import COUNTER_FIELDS, GAUGE_FIELDS
from wenu_stream.stats.items import decode_state, state_pk, window_item, window_pk

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        QueryInputTypeDef,
        ScanInputPaginateTypeDef,
        UpdateItemInputTypeDef,
    )
    from mypy_boto3_s3.client import S3Client

Page = tuple[list[Item], str | None]  # items and the cursor of the next page (None: last page)


def encode_cursor(key: Item | None) -> str | None:
    """An opaque cursor for a DynamoDB ``LastEvaluatedKey``."""
    return None if not key else base64.urlsafe_b64encode(msgspec.json.encode(key)).decode()


def decode_cursor(cursor: str | None, hash_key: Item, range_key: str) -> Item | None:
    """The ``ExclusiveStartKey`` of a cursor of the query on ``hash_key`` (ValueError when it is not one of ours).

    A cursor is the key DynamoDB resumes after: one that names other attributes, or another hash key
    (a cursor of another list), would make DynamoDB refuse the query, so it is refused here as the caller's.
    """
    if not cursor:
        return None
    try:
        key = msgspec.json.decode(base64.urlsafe_b64decode(cursor.encode()))
    except (msgspec.DecodeError, ValueError) as exc:
        raise ValueError("not a cursor of this API") from exc
    if (
        not isinstance(key, dict)
        or set(key) != {*hash_key, range_key}
        or any(key[name] != value for name, value in hash_key.items())
        or not _scalar(key[range_key])
    ):
        raise ValueError("not a cursor of this list")
    return key


def _scalar(value: object) -> bool:
    """A string or number attribute value (``{"S": "..."}`` or ``{"N": "..."}``)."""
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("S", value.get("N")), str)


def query_windows(
    ddb: DynamoDBClient,
    table: str,
    series: str,
    width: str,
    start_ms: int,
    end_ms: int,
    now_s: int,
    *,
    limit: int | None = None,
    cursor: str | None = None,
    newest_first: bool = False,
) -> Page:
    """One page of window items of ``series`` starting in ``[start_ms, end_ms)``, never an expired one.

    With ``limit`` None every page is read (the CLI); otherwise one Query of at most ``limit`` items.
    """
    args: QueryInputTypeDef = {
        "TableName": table, "KeyConditionExpression": "pk = :pk AND sk BETWEEN :a AND :b",
        "FilterExpression": "expires_at > :now",  # TTL deletion lags (by days on AWS, forever on emulators)
        "ExpressionAttributeValues": {":pk": {"S": window_pk(series, width)}, ":a": {"N": str(start_ms)},
                                      ":b": {"N": str(end_ms - 1)}, ":now": {"N": str(now_s)}},
        "ScanIndexForward": not newest_first,
    }  # fmt: skip
    if limit is not None:
        args["Limit"] = limit
    start = decode_cursor(cursor, {"pk": {"S": window_pk(series, width)}}, "sk")
    items: list[Item] = []
    while True:
        if start:
            args["ExclusiveStartKey"] = start
        page = ddb.query(**args)
        items.extend(page.get("Items", []))
        first_page = "ExclusiveStartKey" not in args
        start = page.get("LastEvaluatedKey")
        if limit is not None or not start:
            newest_here = first_page if newest_first else not start  # the page where open windows belong
            fresher = unpublished(ddb, table, series, width)
            fresher = {k: v for k, v in fresher.items() if start_ms <= k < end_ms}
            return merge_windows(items, fresher, newest_first, newest_here), encode_cursor(start)


def unpublished(ddb: DynamoDBClient, table: str, series: str, width: str) -> dict[int, Item]:
    """The ``width`` windows of ``series`` as its state item holds them (start -> window item).

    They are at least as new as their own items: the sink writes the state item,
    with every window changed since the windows were last written, first.
    """
    got = ddb.get_item(TableName=table, Key={"pk": {"S": state_pk(series)}, "sk": {"N": "0"}})
    return _unpublished(got.get("Item"), width)


def _unpublished(item: Item | None, width: str) -> dict[int, Item]:
    if item is None:
        return {}
    state, fence, redo = decode_state(item)
    return {
        e.start: window_item(state, (e.width, e.start), e.agg, fence, 1200) for e in redo if e.width == width
    }


def merge_windows(
    items: list[Item], fresher: dict[int, Item], newest_first: bool, newest_here: bool
) -> list[Item]:
    """Replace items by fresher copies; on the page that holds the newest windows, add those not written yet."""
    if not fresher:
        return items
    out = [fresher.pop(int(i["sk"]["N"]), i) for i in items]
    if newest_here:
        newest = max((int(i["sk"]["N"]) for i in out), default=-1)
        extra = sorted((k, v) for k, v in fresher.items() if k > newest)
        out = [v for _, v in reversed(extra)] + out if newest_first else out + [v for _, v in extra]
    return out


def window_row(item: Item, *, times: bool = False) -> dict[str, Any]:
    """One window as shown: series, window, start, end and the aggregates of the series' kind (``times``:
    and the times of its first and last readings)."""
    fields = COUNTER_FIELDS if item["kind"]["S"] == "counter" else GAUGE_FIELDS
    out: dict[str, Any] = {name: item[name]["S"] for name in ("series", "window", "start", "end")}
    for name in fields:
        value = item.get(name, {"NULL": True})
        out[name] = None if "NULL" in value else (int(value["N"]) if name == "count" else float(value["N"]))
    for name in ("first_at", "last_at") if times else ():
        if name in item:
            out[name] = item[name]["S"]
    return out


def latest_windows(
    ddb: DynamoDBClient, table: str, series: Sequence[str], width: str, now_s: int, workers: int = 8
) -> dict[str, Item]:
    """The newest unexpired ``width`` window of each series that has one (one Query per series, in parallel)."""

    def newest(name: str) -> tuple[str, Item | None]:
        pages = ddb.get_paginator("query").paginate(
            TableName=table, KeyConditionExpression="pk = :pk", ScanIndexForward=False,
            FilterExpression="expires_at > :now", PaginationConfig={"PageSize": 4},
            ExpressionAttributeValues={":pk": {"S": window_pk(name, width)}, ":now": {"N": str(now_s)}},
        )  # fmt: skip
        stored = next((i for page in pages for i in page.get("Items", [])), None)
        fresher = unpublished(ddb, table, name, width)
        if fresher and (stored is None or max(fresher) >= int(stored["sk"]["N"])):
            return name, fresher[max(fresher)]
        return name, stored

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(series)))) as pool:
        return {name: item for name, item in pool.map(newest, series) if item is not None}


def scan_instances(ddb: DynamoDBClient, table: str, **equal: str | None) -> Iterator[Item]:
    """Alarm instance items whose attributes equal the given values (None: any)."""
    conditions = ["attribute_exists(#rule)"]  # instance items only, not the shards' clock items
    names: dict[str, str] = {"#rule": "rule"}
    values: dict[str, AttributeValueTypeDef] = {}
    for field, value in equal.items():
        if value is not None:
            conditions.append(f"#{field} = :{field}")
            names[f"#{field}"] = field
            values[f":{field}"] = {"S": value}
    args: ScanInputPaginateTypeDef = {
        "TableName": table,
        "FilterExpression": " AND ".join(conditions),
        "ExpressionAttributeNames": names,
    }
    if values:
        args["ExpressionAttributeValues"] = values
    for page in ddb.get_paginator("scan").paginate(**args):
        yield from page.get("Items", [])


def get_instance(ddb: DynamoDBClient, table: str, rule: str, series: str) -> Item | None:
    """The item of one alarm instance, read consistently, or None."""
    item: Item | None = ddb.get_item(
        TableName=table, Key={"pk": {"S": instance_pk(rule, series)}}, ConsistentRead=True
    ).get("Item")
    return item


def query_transitions(
    ddb: DynamoDBClient,
    table: str,
    series: str,
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
    limit: int | None = None,
    cursor: str | None = None,
    newest_first: bool = False,
) -> Page:
    """Transitions of ``series`` (the ledger), oldest first, optionally with reading time in ``[start, end)``."""
    condition = "series = :s"
    values: Item = {":s": {"S": series}}
    if start_ms is not None or end_ms is not None:
        condition += " AND sk BETWEEN :a AND :b"
        values[":a"] = {"S": f"{start_ms or 0:015d}"}
        values[":b"] = {"S": f"{(end_ms if end_ms is not None else 10**15) - 1:015d}~"}
    args: QueryInputTypeDef = {
        "TableName": table,
        "KeyConditionExpression": condition,
        "ExpressionAttributeValues": values,
        "ConsistentRead": True,
        "ScanIndexForward": not newest_first,
    }
    if limit is not None:
        args["Limit"] = limit
    start = decode_cursor(cursor, {"series": {"S": series}}, "sk")
    items: list[Item] = []
    while True:
        if start:
            args["ExclusiveStartKey"] = start
        page = ddb.query(**args)
        items.extend(page.get("Items", []))
        start = page.get("LastEvaluatedKey")
        if limit is not None or not start:
            return items, encode_cursor(start)


def set_instance_attribute(
    ddb: DynamoDBClient, table: str, rule: str, series: str, name: str, value: AttributeValueTypeDef | None
) -> bool:
    """Set (or remove, with None) an operator attribute (``ack``, ``shelf``) of an existing instance.

    Returns False when the instance does not exist (nothing is written).
    """
    update = f"REMOVE #{name}" if value is None else f"SET #{name} = :v"
    args: UpdateItemInputTypeDef = {
        "TableName": table,
        "Key": {"pk": {"S": instance_pk(rule, series)}},
        "UpdateExpression": update,
        "ConditionExpression": "attribute_exists(pk)",
        "ExpressionAttributeNames": {f"#{name}": name},
    }
    if value is not None:
        args["ExpressionAttributeValues"] = {":v": value}
    try:
        ddb.update_item(**args)
    except ClientError as exc:
        if is_conditional_failure(exc):
            return False
        raise
    return True


def dead_letters(
    s3: S3Client,
    bucket: str,
    prefix: str,
    *,
    since_ms: int | None = None,
    until_ms: int | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Dead-letter documents under ``prefix`` (``aws.dead_letters`` layout), without the record bytes, arrived in
    ``[since, until)``, one page in key and shard order (ValueError for a cursor that is not one of ours)."""
    after = None if cursor is None else Cursor.decode(cursor)
    out: list[dict[str, Any]] = []
    letters = iter_letters(s3, bucket, prefix, since_ms=since_ms, until_ms=until_ms, after=after)
    for letter in letters:
        doc: dict[str, Any] = msgspec.to_builtins(letter.document)
        doc.pop("data_b64", None)
        out.append(doc | {"key": letter.key})
        if len(out) == limit:
            nxt = next(letters, None)  # a full page is the last one when nothing follows
            return out, None if nxt is None else Cursor(letter.key, letter.line).encode()
    return out, None


def quarantine_counts(s3: S3Client, bucket: str, prefix: str) -> list[dict[str, Any]]:
    """Quarantined readings counted by (device, channel, reason)."""
    from collections import Counter

    counts: Counter[tuple[str, str, str]] = Counter()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            doc = msgspec.json.decode(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            counts.update((r["device"], r["ch"], str(r["reason"])) for r in doc.get("readings", []))
    return [{"device": d, "ch": c, "reason": r, "readings": n} for (d, c, r), n in sorted(counts.items())]


def warehouse_readings(
    dsn: str, schema: str, series: str, start_ms: int, end_ms: int, limit: int = 500_000
) -> list[Any]:
    """A series' readings in ``[start, end)`` from the PostgreSQL warehouse, in time order (ties as the shard
    ordered them: device, seq, position), as ``SeriesReading``."""
    import psycopg

    from wenu_stream.model import SeriesReading
    from wenu_stream.warehouse.sql import series_readings

    sql = series_readings(schema)
    with psycopg.connect(dsn, connect_timeout=10) as conn:
        rows = conn.execute(sql, (series, start_ms, end_ms, limit)).fetchall()
    return [
        SeriesReading(
            series=r[0],
            company=r[1],
            site=r[2],
            timezone=r[3],
            kind=r[4],
            unit=r[5],
            device=r[6],
            ch=r[7],
            seq=int(r[8]),
            index=int(r[9]),
            t=int(r[10]),
            value=float(r[11]),
            raw_value=float(r[12]),
        )
        for r in rows
    ]
