"""A forgotten password on /demo in a real browser (headless Chromium, Playwright), on `genhub serve`
with the embedded defaults: "Forgot password?" -> the e-mail in the local outbox -> its link opens the
page's form (the token taken out of the address bar) -> a new password -> signed in with it; the same
link a second time is refused."""

from __future__ import annotations

import re
import time
from email import message_from_bytes
from email import policy as email_policy
from pathlib import Path

import pytest

from tests.e2e.test_demo_browser import DEMO_EMAIL, SERVER_ENV, demo_page
from tests.fixtures.server import serve

pytestmark = [pytest.mark.slow, pytest.mark.browser]

NEW_PASSWORD = "a new demo passphrase"


def reset_link(outbox: Path, timeout: float = 20.0) -> str:
    """The link of the one reset e-mail the server wrote to its outbox."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        written = sorted(outbox.glob("*.eml")) if outbox.is_dir() else []
        if written:
            message = message_from_bytes(written[-1].read_bytes(), policy=email_policy.default)
            assert message["To"] == DEMO_EMAIL
            body = message.get_body(preferencelist=("plain",))
            assert body is not None
            [link] = re.findall(r"http://\S+/demo#reset=[A-Za-z0-9_-]+", body.get_content())
            return link
        time.sleep(0.1)
    raise AssertionError(f"no e-mail in {outbox} after {timeout}s")


def test_a_forgotten_password_is_reset_from_the_emailed_link(tmp_path: Path) -> None:
    with serve(SERVER_ENV, tmp_path, public_url=True) as server, demo_page(server, "reset") as page:
        # given the demo page with the seeded account's address filled in
        page.goto(f"{server.url}/demo")
        page.wait_for_selector("body[data-ready=true]")
        # when the person asks for a reset
        page.click("#forgot")
        page.wait_for_function("() => document.querySelector('#signin-note').textContent.includes('on its way')")
        link = reset_link(tmp_path / "data" / "outbox")
        assert link.startswith(f"{server.url}/demo#reset=")
        # and opens the e-mailed link
        page.goto("about:blank")
        page.goto(link)
        page.wait_for_selector("#reset-card:not([hidden])")
        # then the token is out of the address bar at once
        assert page.evaluate("() => location.hash") == ""
        # when a new password is chosen, then the sign-in form says so and it signs in
        page.fill("#new-password", NEW_PASSWORD)
        page.click("#reset-submit")
        page.wait_for_selector("#signin-card:not([hidden])")
        assert "password is set" in page.text_content("#signin-note")
        assert page.input_value("#email") == DEMO_EMAIL
        page.fill("#password", NEW_PASSWORD)
        page.click("#sign-in")
        page.wait_for_selector("#generate-card:not([hidden])")
        # and the same link a second time is refused, the new password unchanged
        page.evaluate("() => sessionStorage.clear()")
        page.goto("about:blank")
        page.goto(link)
        page.wait_for_selector("#reset-card:not([hidden])")
        page.fill("#new-password", "yet another passphrase")
        page.click("#reset-submit")
        page.wait_for_function("() => document.querySelector('#reset-error').textContent.includes('already used')")
