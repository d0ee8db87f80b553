"""A password reset by e-mail with real `genhub worker` processes: requested through the API's use case,
the e-mail sent by a worker over SMTP to an in-process aiosmtpd server, its link's token used once,
a second use refused, and every session of the account ended."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator

import pytest

from domain.errors import InvalidCredentials
from infrastructure.bootstrap import bind
from tests.fixtures.smtp import InProcessSmtp, smtp_env
from tests.integration.workers.conftest import Processes, side_container, worker_processes

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

PASSWORD = "correct horse battery"
NEW_PASSWORD = "a brand new passphrase"
TOKEN = re.compile(r"/demo#reset=([A-Za-z0-9_-]+)")


@pytest.fixture(scope="module")
def mail_env(worker_env: dict[str, str], smtp: InProcessSmtp) -> dict[str, str]:
    return {
        **worker_env,
        **smtp_env(smtp),
        "PUBLIC_BASE_URL": "https://genhub.example",
    }


@pytest.fixture(scope="module")
def workers(mail_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processes]:
    with worker_processes(mail_env, tmp_path_factory.mktemp("reset-mail-logs")) as procs:
        yield procs


async def test_the_reset_link_arrives_over_smtp_from_a_worker_and_works_once(
    workers: Processes, mail_env: dict[str, str], smtp: InProcessSmtp, clean_postgres: str
) -> None:
    async with side_container(mail_env) as container:
        services = bind(container)
        # given a signed-in account
        session = await services.accounts.register("worker-reset@example.com", PASSWORD)
        principal, _ = services.accounts.verify_access(session.access_token)
        # when a reset is requested (the API's use case: it only queues the e-mail)
        await services.passwords.request_reset("Worker-Reset@example.com")
        # then a worker delivers it over SMTP, with the link
        deadline = time.monotonic() + 30
        while not any("worker-reset@example.com" in r.rcpt_tos for r in smtp.received):
            assert time.monotonic() < deadline, "no reset e-mail over SMTP within 30 s"
            await asyncio.sleep(0.05)
        [received] = [r for r in smtp.received if "worker-reset@example.com" in r.rcpt_tos]
        assert received.parsed["Subject"] == "Reset your genhub password"
        body = received.parsed.get_body(preferencelist=("plain",))
        assert body is not None
        assert "https://genhub.example/demo#reset=" in body.get_content()
        [token] = TOKEN.findall(body.get_content())
        # when the link's token is used, then it works once, and every session has ended
        user = await services.passwords.reset(token, NEW_PASSWORD)
        assert user.email == "worker-reset@example.com"
        with pytest.raises(InvalidCredentials):
            await services.passwords.reset(token, "yet another passphrase")
        assert await services.accounts.refusal(principal) is not None
        with pytest.raises(InvalidCredentials):
            await services.accounts.refresh(session.refresh_token)
        signed_in = await services.accounts.login("worker-reset@example.com", NEW_PASSWORD)
        assert await services.accounts.refusal(services.accounts.verify_access(signed_in.access_token)[0]) is None
