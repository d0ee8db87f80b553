"""The send_email task run by real `genhub worker` and `genhub scheduler` processes, delivering to a real
SMTP server (aiosmtpd): delivered once, refused for good once, retried until the server takes it."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator

import asyncpg
import pytest
from taskiq.kicker import AsyncKicker

from domain.emails import SEND_EMAIL_TASK, EmailMessage
from tests.fixtures.smtp import InProcessSmtp, smtp_env
from tests.integration.workers.conftest import Processes, side_container, worker_processes

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

# Recipients unique to this run: rows another test module left in the same database are
# swept by these workers before clean_postgres runs, and must never pass for this module's.
ADA = f"ada-{uuid.uuid4().hex[:8]}@example.com"
BOB = f"bob-{uuid.uuid4().hex[:8]}@example.com"
GONE = f"gone-{uuid.uuid4().hex[:8]}@example.com"
CAROL = f"carol-{uuid.uuid4().hex[:8]}@example.com"


@pytest.fixture(scope="module")
def mail_env(worker_env: dict[str, str], smtp: InProcessSmtp) -> dict[str, str]:
    return {
        **worker_env,
        **smtp_env(smtp),
        "MAIL_FROM_NAME": "genhub tests",
        # Retries within a second or two, and the sweep that queues them every second.
        "MAIL_RETRY_BASE_SECONDS": "0.5",
        "MAIL_RETRY_MAX_SECONDS": "1",
        "MAIL_SWEEP_SECONDS": "1",
    }


@pytest.fixture(scope="module")
def workers(mail_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processes]:
    with worker_processes(mail_env, tmp_path_factory.mktemp("mail-logs")) as procs:
        yield procs


async def until(condition: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def records(postgres_dsn: str, recipient: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(postgres_dsn)
    try:
        return list(
            await conn.fetch(
                "SELECT status, attempts, body, last_error FROM outbound_emails WHERE recipient = $1", recipient
            )
        )
    finally:
        await conn.close()


async def queue(env: dict[str, str], message: EmailMessage, *, task_id: str | None = None) -> None:
    async with side_container(env) as container:
        kicker = AsyncKicker(task_name=SEND_EMAIL_TASK, broker=container.broker, labels={})
        await kicker.with_task_id(task_id or uuid.uuid4().hex).kiq(**message.as_task_args())


async def settled(postgres_dsn: str, recipient: str) -> list[asyncpg.Record]:
    """The recipient's records once none is pending any more (the worker settles right after sending)."""
    deadline = time.monotonic() + 10
    while True:
        found = await records(postgres_dsn, recipient)
        if all(r["status"] != "pending" for r in found) or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.05)


def sent_to(smtp: InProcessSmtp, address: str) -> list[str]:
    return [address for r in smtp.received if address in r.rcpt_tos]


async def test_the_worker_delivers_a_queued_message_once(
    workers: Processes, mail_env: dict[str, str], smtp: InProcessSmtp, clean_postgres: str, postgres_dsn: str
) -> None:
    # given a server that takes mail
    smtp.set_mode("accept")
    message = EmailMessage(to=ADA, subject="Your export is ready", text="link", html="<a>link</a>")
    # when the API side queues the message the way use cases do
    async with side_container(mail_env) as container:
        await container.jobs.enqueue(SEND_EMAIL_TASK, **message.as_task_args())
    # then the worker delivers it, and its record is settled without its body
    await until(lambda: bool(sent_to(smtp, ADA)))
    [received] = [r for r in smtp.received if r.rcpt_tos == [ADA]]
    assert received.parsed["Subject"] == "Your export is ready"
    assert received.parsed["From"] == "genhub tests <noreply@genhub.example>"
    [(status, attempts, body, _error)] = await settled(postgres_dsn, ADA)
    assert (status, attempts, body) == ("sent", 1, None)


async def test_a_redelivered_task_message_sends_once(
    workers: Processes, mail_env: dict[str, str], smtp: InProcessSmtp, clean_postgres: str, postgres_dsn: str
) -> None:
    # given one task message delivered three times (as the stream redelivers one a worker held when it died)
    smtp.set_mode("accept")
    message = EmailMessage(to=BOB, subject="Reset", text="t")
    task_id = uuid.uuid4().hex
    for _ in range(3):
        await queue(mail_env, message, task_id=task_id)
    # then the message was sent once and recorded once
    await until(lambda: bool(sent_to(smtp, BOB)))
    await asyncio.sleep(2.5)  # the sweep ran twice meanwhile
    assert len(sent_to(smtp, BOB)) == 1
    assert [r["status"] for r in await records(postgres_dsn, BOB)] == ["sent"]


async def test_a_refused_recipient_is_logged_once_and_not_retried(
    workers: Processes, mail_env: dict[str, str], smtp: InProcessSmtp, clean_postgres: str, postgres_dsn: str
) -> None:
    # given a server that refuses every recipient for good
    smtp.set_mode("refuse")
    refused_before = len(smtp.handler.refused)
    await queue(mail_env, EmailMessage(to=GONE, subject="Reset", text="t"))
    # then the worker tried once, logged it once, and did not try again (the sweep runs every second)
    await until(lambda: f"to {GONE} refused for good" in workers.logs())
    await asyncio.sleep(2.5)
    assert smtp.handler.refused[refused_before:] == [GONE]
    assert workers.logs().count(f"to {GONE} refused for good") == 1
    [(status, attempts, body, error)] = await settled(postgres_dsn, GONE)
    assert (status, attempts, body) == ("undeliverable", 1, None) and "550" in error
    smtp.set_mode("accept")


async def test_a_server_saying_later_gets_the_message_once_it_takes_mail(
    workers: Processes, mail_env: dict[str, str], smtp: InProcessSmtp, clean_postgres: str, postgres_dsn: str
) -> None:
    # given a server that answers 421 (try again later)
    smtp.set_mode("later")
    await queue(mail_env, EmailMessage(to=CAROL, subject="Reset", text="t"))
    # when it has refused twice (the first attempt and a retry queued by the sweep)
    await until(lambda: smtp.handler.refused.count(CAROL) >= 2)
    [(status, _attempts, body, error)] = await records(postgres_dsn, CAROL)
    assert status == "pending" and body is not None and "421" in error
    # and then takes mail again
    smtp.set_mode("accept")
    # then a later retry delivers it, once
    await until(lambda: bool(sent_to(smtp, CAROL)))
    await asyncio.sleep(2.5)
    assert len(sent_to(smtp, CAROL)) == 1
    [(status, attempts, body, _error)] = await settled(postgres_dsn, CAROL)
    assert status == "sent" and attempts >= 3 and body is None
