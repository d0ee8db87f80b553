"""The embedded default's outbox: send_email run in-process writes an .eml file that /dev/outbox and
`genhub outbox` show; neither exists in production or when an SMTP server is configured."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx

from domain.emails import SEND_EMAIL_TASK, EmailMessage
from infrastructure.bootstrap import Services
from tests.fixtures.app import SettingsFactory, running_app

ROOT = Path(__file__).resolve().parents[2]
RESET = EmailMessage(
    to="ada@example.com",
    subject="Reset your genhub password",
    text="Open http://127.0.0.1:8000/reset?token=tok-123",
    html="<script>alert(1)</script><a href='http://127.0.0.1:8000/reset?token=tok-123'>reset</a>",
)


#: The Host a browser on this machine sends (the page answers no other).
LOCALHOST = {"Host": "localhost:8000"}


async def wait_for_file(directory: Path, seconds: float = 10.0) -> Path:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = sorted(directory.glob("*.eml")) if directory.is_dir() else []
        if found:
            return found[-1]
        await asyncio.sleep(0.05)
    raise AssertionError(f"nothing written to {directory}")


async def test_embedded_mail_lands_in_the_outbox_and_the_dev_page_shows_it(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    settings = make_settings()
    async with running_app(settings) as client:
        services: Services = client.app.state.services
        # given the embedded default (no SMTP_HOST): mail goes to DATA_DIR/outbox
        assert services.mail_outbox is not None
        # when a use case queues a message
        await services.adapters.jobs.enqueue(SEND_EMAIL_TASK, **RESET.as_task_args())
        path = await wait_for_file(settings.data_dir / "outbox")
        # then one private .eml file holds it
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert b"token=tok-123" in path.read_bytes()
        # and the development page lists it and shows it as plain text, never as HTML
        listing = await client.http.get("/dev/outbox", headers=LOCALHOST)
        assert listing.status_code == 200 and "to ada@example.com  Reset your genhub password" in listing.text
        shown = await client.http.get("/dev/outbox/latest", headers=LOCALHOST)
        by_id = await client.http.get(f"/dev/outbox/{path.stem}", headers=LOCALHOST)
    for page in (listing, shown, by_id):
        assert page.headers["content-type"] == "text/plain; charset=utf-8"
        assert page.headers["x-content-type-options"] == "nosniff"
    assert (
        shown.text == by_id.text
        and "token=tok-123" in shown.text
        and "Subject: Reset your genhub password" in shown.text
    )


async def test_the_dev_page_refuses_paths_that_are_not_message_ids(make_settings: SettingsFactory) -> None:
    async with running_app(make_settings()) as client:
        services: Services = client.app.state.services
        await services.adapters.jobs.enqueue(SEND_EMAIL_TASK, **RESET.as_task_args())
        await wait_for_file(services.settings.data_dir / "outbox")
        for path in (
            "/dev/outbox/..%2F..%2Fgenhub.db",
            "/dev/outbox/%2Fetc%2Fpasswd",
            "/dev/outbox/nope",
            "/dev/outbox/.eml",
        ):
            answer = await client.http.get(path, headers=LOCALHOST)
            assert answer.status_code == 404, path


async def test_no_dev_page_when_an_smtp_server_is_configured(make_settings: SettingsFactory) -> None:
    async with running_app(make_settings(smtp_host="127.0.0.1")) as client:
        assert client.app.state.services.mail_outbox is None
        assert (await client.http.get("/dev/outbox", headers=LOCALHOST)).status_code == 404
        assert (await client.http.get("/dev/outbox/latest", headers=LOCALHOST)).status_code == 404


async def test_the_outbox_command_lists_and_shows_messages(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    async with running_app(settings) as client:
        await client.app.state.services.adapters.jobs.enqueue(SEND_EMAIL_TASK, **RESET.as_task_args())
        path = await wait_for_file(settings.data_dir / "outbox")
    env = {**os.environ, "DATA_DIR": str(settings.data_dir), "SMTP_HOST": ""}

    def genhub(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "entrypoints.cli", "outbox", *args],
            cwd=settings.data_dir.parent,
            env={**env, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=60,
        )

    listed = genhub("list")
    assert listed.returncode == 0 and f"{path.stem}" in listed.stdout and "to ada@example.com" in listed.stdout
    shown = genhub("show", "latest")
    assert shown.returncode == 0 and "token=tok-123" in shown.stdout and "To: ada@example.com" in shown.stdout
    missing = genhub("show", "../genhub")
    assert missing.returncode == 2 and "no message" in missing.stdout


async def test_the_dev_page_answers_only_this_machine(make_settings: SettingsFactory) -> None:
    async with running_app(make_settings()) as client:
        services: Services = client.app.state.services
        await services.adapters.jobs.enqueue(SEND_EMAIL_TASK, **RESET.as_task_args())
        await wait_for_file(services.settings.data_dir / "outbox")
        # given the development server's outbox holding a reset link, shown to a loopback peer
        assert "tok-123" in (await client.http.get("/dev/outbox/latest", headers=LOCALHOST)).text
        for peer, headers in (
            ("203.0.113.7", {}),  # anyone on the network, the server bound to 0.0.0.0
            ("192.168.1.20", {"X-Forwarded-For": "127.0.0.1"}),  # a forged header changes nothing
            ("::ffff:10.0.0.5", {}),
            ("127.0.0.1", {"X-Forwarded-For": "203.0.113.7"}),  # relayed by a proxy on this host
            ("::1", {"Forwarded": "for=203.0.113.7"}),
            ("localhost", {}),  # not an address: refused rather than trusted
            ("127.0.0.1", {"X-Real-IP": "203.0.113.7"}),  # the other headers proxies name clients by
            ("127.0.0.1", {"CF-Connecting-IP": "203.0.113.7"}),
            ("127.0.0.1", {"True-Client-IP": "203.0.113.7"}),
        ):
            transport = httpx.ASGITransport(app=client.app, client=(peer, 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as remote:
                # when it asks for the outbox
                answers = [
                    await remote.get(path, headers={**LOCALHOST, **headers})
                    for path in ("/dev/outbox", "/dev/outbox/latest")
                ]
            # then it is told nothing exists
            assert [a.status_code for a in answers] == [404, 404], peer
            assert all("tok-123" not in a.text for a in answers)
        for peer in ("::1", "127.0.0.2", "::ffff:127.0.0.1"):
            transport = httpx.ASGITransport(app=client.app, client=(peer, 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as local:
                assert "tok-123" in (await local.get("/dev/outbox/latest", headers=LOCALHOST)).text, peer


async def test_the_dev_page_answers_only_requests_naming_this_machine(make_settings: SettingsFactory) -> None:
    async with running_app(make_settings()) as client:
        services: Services = client.app.state.services
        await services.adapters.jobs.enqueue(SEND_EMAIL_TASK, **RESET.as_task_args())
        await wait_for_file(services.settings.data_dir / "outbox")
        # given the outbox holding a reset link, and a loopback peer: a browser on this machine
        for host in ("localhost", "localhost:8000", "127.0.0.1:8000", "[::1]", "[::1]:8000", "LocalHost:80"):
            # when the request names this machine, then the page is shown
            shown = await client.http.get("/dev/outbox/latest", headers={"Host": host})
            assert "tok-123" in shown.text, host
        for host in (
            "evil.example",  # a page whose name was rebound to 127.0.0.1 (DNS rebinding)
            "evil.example:8000",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "localhost@evil.example",
            "[::1].evil.example",
            "127.0.0.2",
            "",
        ):
            # when it names another host, then nothing exists
            answers = [
                await client.http.get(path, headers={"Host": host}) for path in ("/dev/outbox", "/dev/outbox/latest")
            ]
            assert [a.status_code for a in answers] == [404, 404], host
            assert all("tok-123" not in a.text for a in answers)
