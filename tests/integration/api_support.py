"""The API service for tests: the real app under uvicorn on a free loopback port, against a real PostgreSQL
catalog and the local AWS emulator (fresh tables, topic and bucket per test)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import msgspec
import uvicorn

from tests.support.catalog import spec_document
from wenu_stream.aws.provision import ensure_alarm_tables, ensure_alarm_topic, ensure_stats_table
from wenu_stream.bootstrap import api_services
from wenu_stream.config import Config, load_config
from wenu_stream.web.app import ApiServices, create_app
from wenu_stream.web.auth import DevTokens, Role


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Api:
    """A running service: its URL, config and services, and clients signed in with a role (and company)."""

    def __init__(self, url: str, config: Config, services: ApiServices, secret_file: str) -> None:
        self.url = url
        self.config = config
        self.services = services
        self._tokens = DevTokens.from_file(secret_file)
        self._clients: list[httpx.Client] = []

    def token(self, role: Role, company: str | None = None, subject: str = "tester") -> str:
        api = self.config.api
        return self._tokens.mint(
            subject=subject,
            role=role,
            company=company,
            now_s=int(time.time()),
            ttl_s=3600,
            roles_claim=api.roles_claim,
            company_claim=api.company_claim,
        )

    def client(
        self,
        role: Role | None = "admin",
        company: str | None = None,
        subject: str = "tester",
        bearer: str | None = None,
    ) -> httpx.Client:
        headers = {}
        if bearer is not None or role is not None:
            headers["Authorization"] = f"Bearer {bearer or self.token(role, company, subject)}"  # type: ignore[arg-type]
        client = httpx.Client(base_url=self.url, headers=headers, timeout=30)
        self._clients.append(client)
        return client

    def close(self) -> None:
        for c in self._clients:
            c.close()


def api_config(name: str, catalog_url: str, tmp: Path, **extra: Any) -> Config:
    """A config with this test's tables, topic and bucket (provisioned)."""
    config = load_config({}, {
        "catalog.url": catalog_url, "stats.table": f"{name}-stats", "alarms.state_table": f"{name}-state",
        "alarms.transitions_table": f"{name}-tr", "alarms.topic_name": name, "sinks.bucket": name[:60],
        "kinesis.stream": name, "api.dev_secret_file": str(tmp / "api-secret"), "api.port": 0, **extra,
    })  # fmt: skip
    ensure_stats_table(config, {})
    ensure_alarm_tables(config, {})
    ensure_alarm_topic(config, {})
    boto3.client("s3").create_bucket(Bucket=config.sinks.bucket)
    return config


@contextlib.contextmanager
def running_api(config: Config, services: ApiServices | None = None) -> Iterator[Api]:
    """Serve the app built from ``config`` on a free loopback port (uvicorn in a thread) until the block ends."""
    services = services or api_services(config)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(services),
            host="127.0.0.1",
            port=port,
            log_config=None,
            access_log=False,
            lifespan="on",
        )
    )
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), name="api-under-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the API did not start")
        time.sleep(0.02)
    api = Api(f"http://127.0.0.1:{port}", config, services, config.api.dev_secret_file)
    try:
        yield api
    finally:
        api.close()
        server.should_exit = True
        thread.join(timeout=20)
        services.catalog.close()


def seed(api: Api, document: dict[str, Any] | None = None) -> int:
    """Apply a whole document through the API (draft, then apply); return the new version."""
    admin = api.client("admin", subject="seeder")
    base = admin.get("/api/v1/catalog").json()["version"]
    draft = admin.post(
        "/api/v1/changesets",
        json={
            "reason": "seed",
            "base_version": base,
            "operations": [{"op": "replace", "document": document or two_companies()}],
        },
    )
    assert draft.status_code == 201, draft.text
    applied = admin.post(f"/api/v1/changesets/{draft.json()['draft']['id']}/apply")
    assert applied.status_code == 200, applied.text
    return int(applied.json()["version"])


def two_companies() -> dict[str, Any]:
    """The spec's ACME and a second company, Bravo, with its own site, meter and rule."""
    doc = spec_document()
    doc["companies"].append(
        {
            "id": "bravo",
            "name": "Bravo Ltd",
            "sites": [
                {
                    "id": "bravo-plant",
                    "name": "Plant",
                    "timezone": "Europe/Madrid",
                    "devices": [
                        {
                            "id": "EM-B1",
                            "channels": [
                                {
                                    "ch": "active_power_w",
                                    "series": "bravo-plant.power",
                                    "kind": "gauge",
                                    "unit": "W",
                                }
                            ],
                        }
                    ],
                }
            ],
        }
    )
    doc["alarm_rules"].append(
        {
            "id": "bravo-power-high",
            "series": "bravo-plant.power",
            "type": "threshold",
            "op": ">",
            "value": 1000,
            "severity": "major",
        }
    )
    return msgspec.json.decode(msgspec.json.encode(doc))
