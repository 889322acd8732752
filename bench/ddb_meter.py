"""A DynamoDB meter for benchmarks: an HTTP proxy on loopback that counts requests and write units.

Run: ``.venv/bin/python bench/ddb_meter.py --upstream http://127.0.0.1:PORT`` (prints its own port on stdout)

It forwards every request unchanged to ``--upstream`` (the emulator) and counts,
per operation (``X-Amz-Target``), the requests and the write request units a
standard write would cost on AWS: one per started KiB of each item written (the
item size rule of the DynamoDB developer guide: attribute names plus values;
numbers about one byte per two significant digits plus one; maps and lists 3
bytes plus one per element). For UpdateItem the size is that of the key and the
SET values (our updates set the whole item). Deletes count one unit. A write
that fails its condition is billed on AWS too, so it is counted.

It runs in its own process, so its CPU is not the worker's. ``GET /__meter``
returns the counts as JSON; ``POST /__meter`` returns them and starts over.
"""

from __future__ import annotations

import argparse
import base64
import math
import re
from collections import Counter
from decimal import Decimal
from typing import Any

import aiohttp
import msgspec
from aiohttp import web

_HOP = {"host", "content-length", "transfer-encoding", "connection", "keep-alive"}


def number_size(text: str) -> int:
    """Bytes of a DynamoDB number: one per two significant digits, plus one."""
    digits = Decimal(text).normalize().as_tuple().digits
    return math.ceil(len(digits) / 2) + 1


def value_size(value: dict[str, Any]) -> int:
    (kind, v), *_ = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "N":
        return number_size(v)
    if kind == "B":
        return len(base64.b64decode(v))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_size(x) + 1 for k, x in v.items())
    if kind == "L":
        return 3 + sum(value_size(x) + 1 for x in v)
    if kind == "SS":
        return sum(len(x.encode()) for x in v)
    if kind == "NS":
        return sum(number_size(x) for x in v)
    if kind == "BS":
        return sum(len(base64.b64decode(x)) for x in v)
    raise ValueError(f"unknown attribute type {kind}")


def item_size(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def units(size: int) -> int:
    return max(1, math.ceil(size / 1024))


def _update_item_size(body: dict[str, Any]) -> int:
    names = body.get("ExpressionAttributeNames", {})
    values = body.get("ExpressionAttributeValues", {})
    size = item_size(body["Key"])
    set_part = body.get("UpdateExpression", "").split("REMOVE")[0]
    for name, value in re.findall(r"([#\w.]+)\s*=\s*(:\w+)", set_part):
        size += len(names.get(name, name).encode()) + value_size(values[value])
    return size


def write_units(operation: str, body: dict[str, Any]) -> tuple[int, int]:
    """(items written, write units) of one request."""
    if operation == "PutItem":
        return 1, units(item_size(body["Item"]))
    if operation == "UpdateItem":
        return 1, units(_update_item_size(body))
    if operation == "DeleteItem":
        return 1, 1
    if operation == "BatchWriteItem":
        n = wcu = 0
        for requests in body.get("RequestItems", {}).values():
            for r in requests:
                n += 1
                wcu += units(item_size(r["PutRequest"]["Item"])) if "PutRequest" in r else 1
        return n, wcu
    if operation == "TransactWriteItems":
        n = wcu = 0
        for r in body.get("TransactItems", []):
            n += 1
            if "Put" in r:
                wcu += 2 * units(item_size(r["Put"]["Item"]))
            else:
                wcu += 2
        return n, wcu
    return 0, 0


class Meter:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.counts: Counter[str] = Counter()
        self.http: aiohttp.ClientSession | None = None

    async def forward(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/__meter":
            out = dict(self.counts)
            if request.method == "POST":
                self.counts.clear()
            return web.json_response(out)
        body = await request.read()
        operation = request.headers.get("X-Amz-Target", "").rpartition(".")[2]
        if operation:
            self.counts[f"requests {operation}"] += 1
            parsed = msgspec.json.decode(body)
            items, wcu = write_units(operation, parsed)
            if items:
                tables = (
                    [parsed["TableName"]] if "TableName" in parsed else list(parsed.get("RequestItems", {}))
                )
                for name in ("", *(f" {t}" for t in tables[:1])):
                    self.counts[f"write requests{name}"] += 1
                    self.counts[f"items written{name}"] += items
                    self.counts[f"WCU{name}"] += wcu
        assert self.http is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        async with self.http.request(
            request.method, self.upstream + request.path_qs, data=body, headers=headers
        ) as up:
            payload = await up.read()
            out_headers = {k: v for k, v in up.headers.items() if k.lower() not in _HOP}
            return web.Response(status=up.status, body=payload, headers=out_headers)


async def start(upstream: str, port: int) -> web.AppRunner:
    meter = Meter(upstream)
    meter.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", meter.forward)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    return runner


def main() -> None:
    import asyncio
    import socket

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    async def serve() -> None:
        await start(args.upstream, port)
        print(port, flush=True)
        await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
