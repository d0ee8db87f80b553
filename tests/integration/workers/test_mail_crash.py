"""A worker killed in the middle of sending: the message is sent once, by another worker, after its hold."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid

import asyncpg
import pytest

from domain.emails import SEND_EMAIL_TASK, EmailMessage
from tests.fixtures.smtp import InProcessSmtp, smtp_env
from tests.integration.workers.conftest import Processes, side_container, worker_processes

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture(scope="module")
def crash_env(worker_env: dict[str, str], smtp: InProcessSmtp) -> dict[str, str]:
    return {
        **worker_env,
        **smtp_env(smtp),
        # An attempt holds its message for 10 x 1 s; the sweep looks every second.
        "SMTP_TIMEOUT_SECONDS": "1",
        "MAIL_SWEEP_SECONDS": "1",
        "MAIL_RETRY_BASE_SECONDS": "0.5",
        "TASK_LEASE_SECONDS": "3",
        "TASK_LEASE_RENEW_SECONDS": "1",
    }


async def until(condition: object, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


async def test_a_worker_killed_mid_send_leaves_the_message_to_another_worker(
    crash_env: dict[str, str],
    smtp: InProcessSmtp,
    clean_postgres: str,
    postgres_dsn: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    with worker_processes(crash_env, tmp_path_factory.mktemp("mail-crash-logs")) as procs:
        await _crash_and_recover(procs, crash_env, smtp, postgres_dsn)


async def _crash_and_recover(procs: Processes, env: dict[str, str], smtp: InProcessSmtp, postgres_dsn: str) -> None:
    # given a server that keeps the worker waiting at RCPT
    smtp.handler.stall_seconds = 3.0
    smtp.set_mode("stall")
    address = f"crash-{uuid.uuid4().hex[:8]}@example.com"
    async with side_container(env) as container:
        await container.jobs.enqueue(
            SEND_EMAIL_TASK, **EmailMessage(to=address, subject="Reset", text="t").as_task_args()
        )
    # when the worker is killed while it waits, before any message was handed over
    await until(lambda: address in smtp.handler.asked, 20)
    procs.kill("worker", signal.SIGKILL)
    assert smtp.received == [] or all(address not in r.rcpt_tos for r in smtp.received)
    smtp.set_mode("accept")
    # and another worker comes up
    procs.start("worker2", "worker")
    procs.wait_ready("worker2")
    # then, once the dead attempt's hold ran out, the message is sent exactly once
    await until(lambda: any(address in r.rcpt_tos for r in smtp.received), 40)
    await asyncio.sleep(3)  # the redelivered task message and the sweep both had their chance meanwhile
    assert sum(address in r.rcpt_tos for r in smtp.received) == 1
    conn = await asyncpg.connect(postgres_dsn)
    try:
        row = await conn.fetchrow("SELECT status, attempts FROM outbound_emails WHERE recipient = $1", address)
    finally:
        await conn.close()
    assert row is not None and row["status"] == "sent" and row["attempts"] == 2
    # by the dead attempt's hold running out, not by a timeout the first worker saw
    assert "not taken" not in procs.logs()
