"""Benchmark: backoffice page latency on the local stack, p50/p99, each next to the API call it is built on.

Run: ``.venv/bin/python bench/backoffice.py [--devices 200] [--requests 100]``

Starts moto + kinesalite and a PostgreSQL server, imports the simulated fleet's catalog (``--devices`` meters),
stores a day of 15-minute windows for one series with the real stats sink, serves the API with the backoffice
(as ``wenu-stream serve api`` does) on loopback, signs in through the sign-in form, and then times, sequentially
over HTTP (one keep-alive connection, the session cookie), the whole HTML page of:

- the series page (a day of 15-minute windows charted, its transitions): floor ``GET /api/v1/series/{s}/stats``;
- a site overview (each series' latest value and alarm state): floor ``GET /api/v1/companies/{c}/series?site=``;
- the alarm console: floor ``GET /api/v1/alarms``;
- the catalog searched for one meter, and unfiltered (every entity, the first 200 of each kind shown):
  floor ``GET /api/v1/catalog`` (the whole document as JSON);
- the rule editor of one rule: floor the same ``GET /api/v1/catalog``;
- a rule preview over the day (``POST /ui/rules/preview``): floor ``POST /api/v1/rules/preview``.

The ratio is what the page costs over the data it shows (rendering, the extra reads a page makes).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.api import _free_port, _iso, row, store_windows


def timed(call: Callable[[], Any], n: int) -> list[float]:
    for _ in range(min(5, n)):  # warm-up: connections, template and catalog caches
        call()
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()

    import httpx
    import uvicorn

    from wenu_stream.aws.provision import ensure_alarm_tables, ensure_stats_table
    from wenu_stream.bootstrap import api_services, backoffice
    from wenu_stream.catalog.document import validate
    from wenu_stream.catalog.store import CatalogStore
    from wenu_stream.cli.catalog import import_as_change_set
    from wenu_stream.config import load_config
    from wenu_stream.devtools.emulator import StackSpec, start_stack, stop_stack
    from wenu_stream.devtools.emulator.postgres import start_postgres, stop_postgres
    from wenu_stream.devtools.simulate import SimulationConfig, fleet_catalog
    from wenu_stream.log import configure_logging
    from wenu_stream.web.app import create_app
    from wenu_stream.web.auth import DevTokens
    from wenu_stream.web.pages import backoffice_routes

    configure_logging("warning")
    import logging

    for name in ("httpx", "uvicorn", "uvicorn.error"):
        logging.getLogger(name).setLevel(logging.WARNING)
    run_dir = Path(tempfile.mkdtemp(prefix="bench-backoffice-"))
    stack = start_stack(StackSpec(run_dir=str(run_dir / "stack")))
    os.environ.update(stack.env())
    pg = start_postgres()
    server = None
    try:
        config = load_config({}, {"catalog.url": pg.dsn, "stats.table": "bench-stats", "api.port": 0,
                                  "alarms.state_table": "bench-state", "alarms.transitions_table": "bench-tr",
                                  "api.dev_secret_file": str(run_dir / "secret")})  # fmt: skip
        ensure_stats_table(config, {})
        ensure_alarm_tables(config, {})
        checked = validate(fleet_catalog(SimulationConfig(devices=args.devices)))
        assert checked.document is not None, checked.problems
        with CatalogStore(pg.dsn) as store:
            import_as_change_set(store, checked.document, author="bench", reason="fleet")
            snapshot = store.snapshot()
        rule = next(r for r in snapshot.rules if r.series is not None and type(r).__name__ == "ThresholdRule")
        series = rule.series
        assert series is not None
        info = snapshot.series[series]
        device = next(
            d for d, chans in snapshot.devices.items() if any(c.series == series for c in chans.values())
        )
        now_ms = int(time.time() * 1000)
        asyncio.run(store_windows(config, series, info, now_ms))
        print(f"catalog: {args.devices} devices, {len(snapshot.series)} series, {len(snapshot.rules)} rules; "
              f"stats: 96 windows of {series}", flush=True)  # fmt: skip

        services = api_services(config)
        app = create_app(services, extra_routes=backoffice_routes(backoffice(config)))
        port = _free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
        )
        threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True).start()
        while not server.started:
            time.sleep(0.02)
        token = DevTokens.from_file(config.api.dev_secret_file).mint(
            subject="bench", role="admin", company=None, now_s=int(time.time()), ttl_s=3600,
            roles_claim=config.api.roles_claim, company_claim=config.api.company_claim)  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"})
        ui = httpx.Client(base_url=base, follow_redirects=True)
        form = ui.get("/ui/login").text
        csrf = re.search(r'name="_csrf_token" value="([^"]+)"', form)
        assert csrf is not None
        signed = ui.post("/ui/login", data={"token": token, "next": "/ui/", "_csrf_token": csrf.group(1)})
        assert signed.status_code == 200 and "bench" in signed.text, signed.status_code

        def ok(client: httpx.Client, method: str, path: str, **kw: Any) -> Callable[[], None]:
            def go() -> None:
                got = client.request(method, path, **kw)
                assert got.status_code == 200, (path, got.status_code, got.text[:300])

            return go

        day = {"from": _iso(now_ms - 86_400_000), "to": _iso(now_ms + 1)}
        preview_form = {"type": "threshold", "id": rule.id, "severity": "major", "target": "series", "series": series,
                        "op": ">", "value": "1050", "for_s": "0", "days": "1", "preview_series": series,
                        "_csrf_token": csrf.group(1)}  # fmt: skip
        preview_json = {"rule": {"type": "threshold", "id": rule.id, "severity": "major", "series": series,
                                 "op": ">", "value": 1050, "for_s": 0}, **day}  # fmt: skip
        n = args.requests
        cases = [
            ("series page (1 day)", ok(ui, "GET", f"/ui/series/{series}", params={"window": "15m"}),
             ok(api, "GET", f"/api/v1/series/{series}/stats", params={"window": "15m", "limit": 500, **day})),
            ("site overview", ok(ui, "GET", f"/ui/sites/{info.site}"),
             ok(api, "GET", f"/api/v1/companies/{info.company}/series", params={"site": info.site, "limit": 500})),
            ("alarm console", ok(ui, "GET", "/ui/alarms"), ok(api, "GET", "/api/v1/alarms")),
            ("catalog, one meter", ok(ui, "GET", "/ui/catalog", params={"q": device}),
             ok(api, "GET", "/api/v1/catalog")),
            ("catalog, everything", ok(ui, "GET", "/ui/catalog"), ok(api, "GET", "/api/v1/catalog")),
            ("rule editor", ok(ui, "GET", f"/ui/rules/{rule.id}"), ok(api, "GET", "/api/v1/catalog")),
            ("rule preview (1 day)", ok(ui, "POST", "/ui/rules/preview", data=preview_form,
                                        headers={"HX-Request": "true"}),
             ok(api, "POST", "/api/v1/rules/preview", json=preview_json)),
        ]  # fmt: skip
        for name, page, floor in cases:
            row(name, timed(page, n), timed(floor, n))
        ui.close()
        api.close()
        services.catalog.close()
        return 0
    finally:
        if server is not None:
            server.should_exit = True
            time.sleep(0.3)
        stop_postgres(pg)
        stop_stack(stack)


if __name__ == "__main__":
    raise SystemExit(main())
