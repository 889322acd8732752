"""Authentication, roles and tenancy over HTTP: every read endpoint checked for a customer of another company,
roles per action, API keys, OIDC tokens verified against a JWKS served on loopback, and the OpenAPI document."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.integration.api_support import Api, api_config, running_api, seed
from tests.integration.test_api_alarms import Worker
from wenu_stream.catalog.workspace import create_api_key, revoke_api_key
from wenu_stream.model import Position, SeriesReading

pytestmark = pytest.mark.integration
ACME, BRAVO = "acme-hq.main.power", "bravo-plant.power"

# Every GET endpoint of /api/v1, as a customer of Bravo asks for ACME's resources: the expected status, and for
# lists what must hold of the items. The set of paths is checked against the OpenAPI document, so a new read
# endpoint fails this test until its tenancy is stated here.
FOREIGN: dict[str, tuple[str, int]] = {
    "/api/v1/alarms": ("/api/v1/alarms?company=acme", 404),
    "/api/v1/alarms/{rule}/{series}": (f"/api/v1/alarms/hq-power-high/{ACME}", 404),
    "/api/v1/companies/{company}/series": ("/api/v1/companies/acme/series", 404),
    "/api/v1/series/{series}/stats": (f"/api/v1/series/{ACME}/stats?window=15m", 404),
    "/api/v1/series/{series}/transitions": (f"/api/v1/series/{ACME}/transitions", 404),
    "/api/v1/apps/{app}/checkpoints": ("/api/v1/apps/processing/checkpoints", 403),
    "/api/v1/audit": ("/api/v1/audit", 403),
    "/api/v1/catalog": ("/api/v1/catalog", 403),
    "/api/v1/catalog/diff": ("/api/v1/catalog/diff?from=0&to=1", 403),
    "/api/v1/catalog/versions": ("/api/v1/catalog/versions", 403),
    "/api/v1/catalog/versions/{version}": ("/api/v1/catalog/versions/1", 403),
    "/api/v1/changesets": ("/api/v1/changesets", 403),
    "/api/v1/changesets/{draft_id}": ("/api/v1/changesets/x", 403),
    "/api/v1/changesets/{draft_id}/impact": ("/api/v1/changesets/x/impact", 403),
    "/api/v1/dead-letters": ("/api/v1/dead-letters", 403),
    "/api/v1/quarantine": ("/api/v1/quarantine", 403),
}
OWN = {  # the same endpoints for Bravo's own resources (lists: only Bravo's items)
    "/api/v1/alarms": "/api/v1/alarms",
    "/api/v1/alarms/{rule}/{series}": f"/api/v1/alarms/bravo-power-high/{BRAVO}",
    "/api/v1/companies/{company}/series": "/api/v1/companies/bravo/series",
    "/api/v1/series/{series}/stats": f"/api/v1/series/{BRAVO}/stats?window=15m",
    "/api/v1/series/{series}/transitions": f"/api/v1/series/{BRAVO}/transitions",
}


@pytest.fixture
def api(aws_stack: object, postgres_database: str, unique_name: str, tmp_path: Path) -> Iterator[Api]:
    with running_api(api_config(unique_name, postgres_database, tmp_path)) as running:
        seed(running)
        yield running


def bravo(t: int, value: float, n: int) -> SeriesReading:
    return SeriesReading(
        series=BRAVO,
        company="bravo",
        site="bravo-plant",
        timezone="Europe/Madrid",
        kind="gauge",
        unit="W",
        device="EM-B1",
        ch="active_power_w",
        seq=n,
        index=0,
        t=t,
        value=value,
        raw_value=value,
        position=Position(5000 + n),
    )


@pytest.mark.slow
async def test_a_customer_sees_only_its_company_on_every_read_endpoint(api: Api, aws_stack: Any) -> None:
    from aiobotocore.session import get_session

    async with get_session().create_client("dynamodb") as ddb, get_session().create_client("sns") as sns:
        worker = Worker(api, ddb, sns)
        t0 = int(time.time() * 1000)
        await worker.feed((t0, 60000), (t0 + 180_000, 60000))
        await worker.sink.write_readings("shardId-1", [bravo(t0, 2000, 1), bravo(t0 + 60_000, 2500, 2)])
        await worker.sink.flush()
        worker.store.close()
    staff = api.client("viewer")
    documented = {p for p, ops in staff.get("/schema/openapi.json").json()["paths"].items() if "get" in ops}
    assert documented == set(FOREIGN)

    customer = api.client("viewer", company="bravo")
    for template, (url, status) in FOREIGN.items():
        got = customer.get(url)
        assert got.status_code == status, (template, got.status_code, got.text)
    for template, url in OWN.items():
        got = customer.get(url)
        assert got.status_code == 200, (template, got.text)
    alarms = customer.get("/api/v1/alarms").json()["items"]
    assert {a["company"] for a in alarms} == {"bravo"} and len(alarms) == 1
    assert {a["company"] for a in staff.get("/api/v1/alarms").json()["items"]} == {"acme", "bravo"}
    assert [s["series"] for s in customer.get("/api/v1/companies/bravo/series").json()["items"]] == [BRAVO]
    assert customer.get("/api/v1/companies/bravo/series", params={"site": "acme-hq"}).status_code == 404
    assert (
        customer.get(f"/api/v1/series/{BRAVO}/transitions").json()["items"][0]["timezone"] == "Europe/Madrid"
    )
    assert customer.get("/api/v1/series/no-such-series/stats?window=1h").status_code == 404  # same as foreign

    operator = api.client("operator", company="bravo")
    assert operator.post(f"/api/v1/alarms/hq-power-high/{ACME}/ack", json={}).status_code == 404
    assert (
        operator.put(
            f"/api/v1/alarms/hq-power-high/{ACME}/shelf", json={"until": "2099-01-01T00:00:00Z"}
        ).status_code
        == 404
    )
    assert (
        operator.post(f"/api/v1/alarms/bravo-power-high/{BRAVO}/ack", json={"comment": "ours"}).status_code
        == 200
    )


def test_roles_decide_what_a_caller_may_do(api: Api) -> None:
    body = {"reason": "r", "operations": []}
    assert api.client("viewer").post("/api/v1/changesets", json=body).status_code == 403
    assert api.client("operator").post("/api/v1/changesets", json=body).status_code == 403
    assert api.client("admin").post("/api/v1/changesets", json=body).status_code == 201
    assert api.client("admin", company="acme").post("/api/v1/changesets", json=body).status_code == 403
    assert api.client("viewer").get("/api/v1/catalog/versions").status_code == 200


def test_no_open_door_bad_tokens_and_api_keys(api: Api) -> None:
    assert api.client(None).get("/api/v1/alarms").status_code == 401
    assert api.client(None, bearer="not-a-token").get("/api/v1/alarms").status_code == 401
    forged = jwt.encode(
        {
            "sub": "x",
            "iss": "wenu-dev",
            "aud": "wenu-api",
            "exp": int(time.time()) + 60,
            "cognito:groups": ["admin"],
        },
        "another-secret-of-32-bytes-or-more!!",
        algorithm="HS256",
    )
    assert api.client(None, bearer=forged).get("/api/v1/alarms").status_code == 401
    expired = api._tokens.mint(
        subject="x",
        role="admin",
        company=None,
        now_s=int(time.time()) - 7200,
        ttl_s=60,
        roles_claim="cognito:groups",
        company_claim="custom:company",
    )
    assert api.client(None, bearer=expired).get("/api/v1/alarms").status_code == 401
    assert api.client(None).get("/healthz").status_code == 200  # probes stay open

    key, info = api.services.catalog.run(
        lambda s: create_api_key(s, name="scada", role="viewer", company="bravo")
    )
    machine = api.client(None, bearer=key)
    assert machine.get(f"/api/v1/series/{BRAVO}/stats", params={"window": "1h"}).status_code == 200
    assert machine.get(f"/api/v1/series/{ACME}/stats", params={"window": "1h"}).status_code == 404
    api.services.catalog.run(lambda s: revoke_api_key(s, info.id))
    assert machine.get(f"/api/v1/series/{BRAVO}/stats", params={"window": "1h"}).status_code == 401


class _Jwks:
    """An OIDC issuer's JWKS document on loopback (what Cognito serves at /.well-known/jwks.json)."""

    def __init__(self, public_jwk: dict[str, Any]) -> None:
        body = json.dumps({"keys": [public_jwk]}).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_oidc_tokens_are_verified_against_the_issuers_jwks(
    aws_stack: object, postgres_database: str, unique_name: str, tmp_path: Path
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key())) | {
        "kid": "k1",
        "alg": "RS256",
        "use": "sig",
    }
    issuer = _Jwks(jwk)
    config = api_config(
        unique_name,
        postgres_database,
        tmp_path,
        **{
            "api.oidc_issuer": issuer.url,
            "api.oidc_audience": "backoffice",
            "api.jwks_url": issuer.url + "/jwks",
        },
    )

    def token(**claims: Any) -> str:
        base = {
            "sub": "staff-1",
            "iss": issuer.url,
            "client_id": "backoffice",
            "exp": int(time.time()) + 300,
            "cognito:groups": ["viewer"],
            "token_use": "access",
        }
        return jwt.encode(base | claims, key, algorithm="RS256", headers={"kid": "k1"})

    try:
        with running_api(config) as api:
            assert api.client(None, bearer=token()).get("/api/v1/catalog").status_code == 200
            assert api.client(None, bearer=token(client_id="other")).get("/api/v1/catalog").status_code == 401
            assert (
                api.client(None, bearer=token(iss="https://evil")).get("/api/v1/catalog").status_code == 401
            )
            assert (
                api.client(None, bearer=token(**{"cognito:groups": []})).get("/api/v1/catalog").status_code
                == 401
            )
            customer = token(**{"custom:company": "acme"})
            assert api.client(None, bearer=customer).get("/api/v1/catalog").status_code == 403
            dev = api.client("admin")  # a development token: refused when an issuer is configured
            assert dev.get("/api/v1/catalog").status_code == 401
    finally:
        issuer.server.shutdown()


def test_the_openapi_document_describes_the_api(api: Api) -> None:
    doc = api.client(None).get("/schema/openapi.json").json()
    assert doc["openapi"].startswith("3.1") and doc["info"]["title"] == "wenu-stream API"
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    apply = doc["paths"]["/api/v1/changesets/{draft_id}/apply"]["post"]
    assert apply["operationId"] == "apply_change_set"
    assert {"If-Match"} <= {p["name"] for p in apply.get("parameters", [])}
    schemas = doc["components"]["schemas"]
    assert {"Impact", "Validation", "DraftView", "VersionInfo", "ChangeProblem", "StatsPage"} <= set(schemas)
    assert set(schemas["Impact"]["properties"]) >= {"series_added", "bindings_lost", "alarms", "stats"}
    stats = doc["paths"]["/api/v1/series/{series}/stats"]["get"]
    window = next(p for p in stats["parameters"] if p["name"] == "window")
    assert window["schema"]["enum"] == ["15m", "1h", "1d", "1mo"]
    ops = [op["operationId"] for path in doc["paths"].values() for op in path.values()]
    assert len(ops) == len(set(ops))
