"""Browser tests of the backoffice: Playwright for Python driving Debian's chromium (tools/ensure-chromium.sh) against
the real service (uvicorn on loopback, the backoffice mounted as by `wenu-stream serve api`), a real PostgreSQL
catalog and the local AWS stack. Screenshots go to .run/screenshots/ (README images come from there)."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from tests.integration.api_support import Api, free_port
from wenu_stream.bootstrap import api_services, backoffice
from wenu_stream.config import Config
from wenu_stream.web.app import create_app
from wenu_stream.web.pages import backoffice_routes

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = ROOT / ".run" / "screenshots"


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's chromium, installed by tools/ensure-chromium.sh when missing (never a Playwright download)."""
    done = subprocess.run(
        ["bash", str(ROOT / "tools" / "ensure-chromium.sh")], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.fail(f"tools/ensure-chromium.sh failed:\n{done.stdout}\n{done.stderr}")
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Any]:
    """Chromium for one module: Playwright's sync API runs an event loop in this thread while it is open, so it
    must be closed before the suite's asyncio tests run (a session-wide one would break them all)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=chromium_path, args=FLAGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (its own cookies) per call: one per signed-in person."""
    contexts: list[Any] = []

    def make() -> Any:
        context = browser.new_context(viewport={"width": 1400, "height": 900}, timezone_id="UTC")
        context.set_default_timeout(20_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for c in contexts:
        c.close()


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@contextlib.contextmanager
def running_service(config: Config) -> Iterator[Api]:
    """The API with the backoffice mounted (as `wenu-stream serve api` does), on a free loopback port."""
    services = api_services(config)
    app = create_app(services, extra_routes=backoffice_routes(backoffice(config)))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False,
                                           lifespan="on"))  # fmt: skip
    thread = threading.Thread(
        target=lambda: asyncio.run(server.serve()), name="backoffice-under-test", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the service did not start")
        time.sleep(0.02)
    api = Api(f"http://127.0.0.1:{port}", config, services, config.api.dev_secret_file)
    try:
        yield api
    finally:
        api.close()
        server.should_exit = True
        thread.join(timeout=20)
        services.catalog.close()


def sign_in(page: Any, api: Api, role: str, company: str | None = None, subject: str = "ana") -> None:
    """Sign in through the sign-in form with a development token (the embedded default's way in)."""
    page.goto(api.url + "/ui/alarms")
    assert "/ui/login" in page.url  # not signed in: sent to the sign-in page, never in
    page.fill("#token", api.token(role, company, subject))  # type: ignore[arg-type]
    page.click("button[type=submit]")
    page.wait_for_url("**/ui/alarms")
