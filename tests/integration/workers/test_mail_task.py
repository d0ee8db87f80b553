"""The send_email task run by a real `genhub worker` process, delivering to a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from domain.emails import SEND_EMAIL_TASK, EmailMessage
from tests.fixtures.redis_server import free_port
from tests.fixtures.smtp import InProcessSmtp
from tests.integration.workers.conftest import Processes, side_container, worker_processes

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture(scope="module")
def smtp() -> Iterator[InProcessSmtp]:
    server = InProcessSmtp(free_port(), "accept")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mail_env(worker_env: dict[str, str], smtp: InProcessSmtp) -> dict[str, str]:
    return {
        **worker_env,
        "SMTP_HOST": smtp.host,
        "SMTP_PORT": str(smtp.port),
        "SMTP_TLS": "none",
        "MAIL_FROM": "noreply@genhub.example",
        "MAIL_FROM_NAME": "genhub tests",
    }


@pytest.fixture(scope="module")
def workers(mail_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processes]:
    with worker_processes(mail_env, tmp_path_factory.mktemp("mail-logs"), scheduler=False) as procs:
        yield procs


async def until(condition: object, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def test_the_worker_delivers_a_queued_message(
    workers: Processes, mail_env: dict[str, str], smtp: InProcessSmtp, clean_postgres: str
) -> None:
    # given a server that takes mail
    smtp.set_mode("accept")
    before = len(smtp.received)
    message = EmailMessage(to="ada@example.com", subject="Your export is ready", text="link", html="<a>link</a>")
    # when the API side queues the message
    async with side_container(mail_env) as container:
        await container.jobs.enqueue(SEND_EMAIL_TASK, **message.as_task_args())
    # then the worker process delivers it
    await until(lambda: len(smtp.received) > before)
    received = smtp.received[before]
    assert received.rcpt_tos == ["ada@example.com"]
    assert received.parsed["Subject"] == "Your export is ready"
    assert received.parsed["From"] == "genhub tests <noreply@genhub.example>"


async def test_a_refused_recipient_is_logged_once_and_not_retried(
    workers: Processes, mail_env: dict[str, str], smtp: InProcessSmtp, clean_postgres: str
) -> None:
    # given a server that refuses every recipient for good
    smtp.set_mode("refuse")
    refused_before = len(smtp.handler.refused)
    message = EmailMessage(to="gone@example.com", subject="Reset", text="t")
    async with side_container(mail_env) as container:
        await container.jobs.enqueue(SEND_EMAIL_TASK, **message.as_task_args())
    # then the worker tried once, logged it once, and did not try again
    await until(lambda: "refused for good" in workers.logs())
    await asyncio.sleep(2.0)
    assert smtp.handler.refused[refused_before:] == ["gone@example.com"]
    assert workers.logs().count("mail to gone@example.com refused for good") == 1
    smtp.set_mode("accept")
