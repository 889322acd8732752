"""Signing in to the backoffice through the configured OIDC issuer (authorization code with PKCE), in a browser: the
issuer is a loopback OIDC server (tests/support/oidc_issuer.py) standing in for Cognito."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import running_service
from tests.integration.api_support import api_config
from tests.support.oidc_issuer import OidcIssuer

pytestmark = pytest.mark.integration
CLIENT = "wenu-backoffice"


@pytest.fixture
def issuer() -> Iterator[OidcIssuer]:
    found = OidcIssuer(CLIENT)
    try:
        yield found
    finally:
        found.close()


@pytest.fixture
def service(aws_stack: object, issuer: OidcIssuer, unique_name: str, tmp_path: Path) -> Iterator[Any]:
    config = api_config(unique_name, f"sqlite:///{tmp_path / 'catalog.db'}", tmp_path,
                        **{"api.oidc_issuer": issuer.url, "api.oidc_audience": CLIENT})  # fmt: skip
    with running_service(config) as api:
        yield api


def test_sign_in_goes_through_the_issuer_with_pkce_and_the_groups_decide_what_is_offered(
    service: Any, issuer: OidcIssuer, new_page: Any
) -> None:
    issuer.user = {"sub": "carla", "cognito:groups": ["viewer"], "custom:company": "acme"}
    page = new_page()
    page.goto(service.url + "/ui/alarms?state=firing")
    page.wait_for_url("**/ui/alarms?state=firing")  # via the issuer and back, to the page asked for
    assert "carla · viewer · acme" in page.inner_text("[data-testid=who]")
    assert issuer.exchanges == [{"ok": True, "verifier_sent": True}]
    assert page.locator("a[href='/ui/catalog']").count() == 0  # a customer: no staff pages offered
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["wenu_session"]["httpOnly"] and cookies["wenu_session"]["sameSite"] == "Lax"
    assert "carla" not in cookies["wenu_session"]["value"]  # encrypted, not merely signed

    # Signing out ends the session: the next page goes through the issuer again (which signs in at once here).
    page.click("button:has-text('Sign out')")
    page.wait_for_url("**/ui/")
    assert len(issuer.exchanges) == 2


def test_a_forged_callback_and_a_pasted_token_are_refused_when_an_issuer_is_configured(
    service: Any, issuer: OidcIssuer
) -> None:
    with httpx.Client(base_url=service.url, follow_redirects=False) as browser:
        started = browser.get("/ui/login?next=/ui/alarms")
        assert started.status_code == 303 and started.headers["location"].startswith(
            issuer.url + "/oauth2/authorize"
        )
        assert "code_challenge_method=S256" in started.headers["location"]
        forged = browser.get("/ui/auth/callback", params={"code": "stolen", "state": "not-this-one"})
        assert forged.status_code == 401 and "state mismatch" in forged.text
        assert browser.get("/ui/alarms").status_code == 303  # still not signed in
        page = browser.get("/ui/login", follow_redirects=False)
        token = service.token("admin")  # a development token is no way in here
        refused = browser.post("/ui/login", data={"token": token, "_csrf_token": _csrf(browser)})
        assert refused.status_code == 403 and page.status_code == 303
    assert issuer.exchanges == []  # the forged code never reached the token endpoint


def _csrf(client: httpx.Client) -> str:
    """The CSRF token a page of this session carries (the cookie holds the same value)."""
    cookie = client.cookies.get("wenu_csrf")
    assert cookie, "the backoffice sets its CSRF cookie on the first page"
    return cookie
