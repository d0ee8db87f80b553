"""The /demo page in a real browser: Debian's headless Chromium driven by Playwright for Python.

A person's path on `genhub serve` with the embedded defaults: open /demo, sign in with the
pre-filled demo account, attach a file, start a generation, watch it reach SUCCEEDED through
`generationUpdated`, see the image and the new balance. The screenshot is saved as
test-artifacts/demo.png. Skipped with a reason without Chromium or Playwright; required in CI.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infrastructure.providers.png import render_png
from tests.fixtures.server import Server, serve

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SERVER_ENV = {"SIMULATED_STEPS": "3", "SIMULATED_STEP_SECONDS": "0.3", "POLL_INTERVAL_SECONDS": "1"}
DEMO_EMAIL = "demo@genhub.local"
DEMO_CREDITS = 1000
IMAGE_COST = 10  # the seeded "Simulated image" model
TIMEOUT_MS = 30_000
IMAGE_LOADED = (
    "() => { const img = document.querySelector('#output img'); return !!img && img.complete && img.naturalWidth > 0; }"
)


def require_browser() -> Any:
    """The Playwright sync API, or a skip (a failure under CI=true) naming what is missing."""
    missing = []
    if not CHROMIUM.exists():
        missing.append("Debian's chromium at /usr/bin/chromium (apt-get install chromium)")
    try:
        from playwright import sync_api
    except ImportError:
        sync_api = None
        missing.append("the playwright Python package (pip install playwright; no `playwright install` needed)")
    if missing:
        reason = "the demo browser test needs " + " and ".join(missing)
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " (required under CI)")
        pytest.skip(reason)
    return sync_api


@contextlib.contextmanager
def demo_page(server: Server, name: str) -> Iterator[Any]:
    """A fresh browser page; on failure a screenshot, the page text, browser errors and server log."""
    sync_api = require_browser()
    problems: list[str] = []
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 1000})
            page.set_default_timeout(TIMEOUT_MS)
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.on(
                "console",
                lambda message: problems.append(f"console: {message.text}") if message.type == "error" else None,
            )
            try:
                yield page
                assert problems == [], problems
            except Exception as exc:
                page.screenshot(path=str(ARTIFACTS / f"{name}-failure.png"), full_page=True)
                raise AssertionError(
                    f"{exc}\n\npage:\n{page.inner_text('body')}\n\nbrowser: {problems}"
                    f"\n\nserver log:\n{server.output()[-4000:]}"
                ) from exc
        finally:
            browser.close()


def sign_in(page: Any, server: Server) -> None:
    page.goto(f"{server.url}/demo")
    page.wait_for_selector("body[data-ready=true]")
    assert page.input_value("#email") == DEMO_EMAIL, "the seeded demo account is pre-filled"
    page.click("#sign-in")
    page.wait_for_selector("#generate-card:not([hidden])")


def wait_for_success(page: Any, credits_left: int) -> None:
    # generationUpdated pushed the final status (not a fallback read) and the image loaded
    page.wait_for_selector("#events li[data-status=SUCCEEDED][data-source=live]", state="attached")
    page.wait_for_function(IMAGE_LOADED)
    # and creditsChanged (or the final read) shows the captured cost
    page.wait_for_function(f"() => document.querySelector('#credits-available').textContent === '{credits_left}'")


def test_demo_page_signs_in_generates_and_shows_the_image_live(tmp_path: Path) -> None:
    attachment = tmp_path / "sketch.png"
    attachment.write_bytes(render_png("sketch", width=16, height=16))
    with serve(SERVER_ENV, tmp_path) as server, demo_page(server, "demo") as page:
        # given the demo page of a fresh development server, signed in with the demo account
        sign_in(page, server)

        # when the person attaches a file and starts a generation
        page.select_option("#model", label=f"Simulated image (image, {IMAGE_COST} credits)")
        page.fill("#prompt", "a lighthouse at dawn")
        page.set_input_files("#file", str(attachment))
        page.click("#generate")

        # then it is watched live to SUCCEEDED, with the image and the new balance
        wait_for_success(page, DEMO_CREDITS - IMAGE_COST)
        page.screenshot(path=str(ARTIFACTS / "demo.png"), full_page=True)
        statuses = page.eval_on_selector_all("#events li", "items => items.map(i => i.dataset.status)")
        live = page.eval_on_selector_all("#events li[data-source=live]", "items => items.length")
        assert page.inner_text("#status") == "SUCCEEDED"
        assert page.inner_text("#run-error") == ""
        assert statuses[0] == "QUEUED" and statuses[-1] == "SUCCEEDED", statuses
        assert live >= 2, statuses  # at least one progress event before the final one
        assert page.get_attribute("#progress", "aria-valuenow") == "100"


def test_demo_page_outlives_its_access_token(tmp_path: Path) -> None:
    # given access tokens that expire after 3 s (the WebSocket is closed with 4401 then)
    with (
        serve({**SERVER_ENV, "ACCESS_TOKEN_TTL_SECONDS": "3"}, tmp_path) as server,
        demo_page(server, "expiry") as page,
    ):
        sign_in(page, server)

        # when the person starts a generation after the token expired
        page.wait_for_timeout(4000)
        page.fill("#prompt", "after expiry")
        page.click("#generate")

        # then the page refreshed its session (HTTP and WebSocket) and watched it live to the end
        wait_for_success(page, DEMO_CREDITS - IMAGE_COST)
        assert page.is_hidden("#signin-card")
        # and a reload keeps the session (sessionStorage) and refreshes it again
        page.reload()
        page.wait_for_selector("body[data-ready=true]")
        page.wait_for_selector("#generate-card:not([hidden])")
