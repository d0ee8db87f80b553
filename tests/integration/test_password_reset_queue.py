"""requestPasswordReset does the same external work for an address with an account and one without:
one message on the task stream each, of the same shape, with neither token nor address in it; the
worker's step then sends the link for the account and nothing for the unknown address (real app,
PostgreSQL, the task stream in Redis)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from domain.use_cases.password_reset import SEND_RESET_TASK
from infrastructure.bootstrap import Services
from tests.fixtures.app import GraphQLClient, SettingsFactory, register_user, running_app

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

REQUEST = "mutation Request($email: String!) { requestPasswordReset(email: $email) { __typename } }"
RESET = """
mutation Reset($token: String!, $new: String!) {
  resetPassword(input: {token: $token, newPassword: $new}) { __typename }
}
"""
QUEUE = f"genhub:test-reset-queue:{uuid.uuid4().hex}"


@pytest.fixture
async def client(make_settings: SettingsFactory, clean_postgres: str, clean_redis: str) -> AsyncIterator[GraphQLClient]:
    settings = make_settings(
        database_url=clean_postgres,
        redis_url=clean_redis,
        task_queue_name=QUEUE,
        public_base_url="http://testserver",
    )
    async with running_app(settings) as c:
        yield c


async def messages(client: GraphQLClient) -> list[dict[str, Any]]:
    services: Services = client.app.state.services
    redis = Redis.from_url(services.settings.redis_url)
    try:
        return [json.loads(fields[b"data"]) for _id, fields in await redis.xrange(QUEUE)]
    finally:
        await redis.aclose()


async def test_a_reset_request_queues_the_same_for_known_and_unknown_addresses(client: GraphQLClient) -> None:
    # given an account, and the task stream as it is after registering
    await register_user(client, "ada@example.com")
    before = len(await messages(client))
    # when a reset is asked for its address, and for an address without an account
    for email in ("ada@example.com", "nobody@example.com"):
        answer = await client.execute(REQUEST, {"email": email})
        assert answer["data"]["requestPasswordReset"]["__typename"] == "RequestPasswordResetSuccess"
    queued = (await messages(client))[before:]
    # then the stream got one message for each, of one task and the same arguments' shape
    assert [(m["task_name"], sorted(m["kwargs"]), m["args"]) for m in queued] == [
        (SEND_RESET_TASK, ["reset_id"], [])
    ] * 2
    assert all("ada@" not in json.dumps(m) and "nobody@" not in json.dumps(m) for m in queued)
    # and the worker's step sends the link for the account only
    services: Services = client.app.state.services
    known, unknown = [await services.passwords.reset_email(uuid.UUID(m["kwargs"]["reset_id"])) for m in queued]
    assert unknown is None
    assert known is not None and known.to == "ada@example.com"
    token = known.text.split("#reset=")[1].split()[0]
    assert token not in json.dumps(queued)  # the token is derived again by the worker, never queued
    reset = await client.execute(RESET, {"token": token, "new": "a brand new passphrase"})
    assert reset["data"]["resetPassword"]["__typename"] == "ResetPasswordSuccess"


async def test_a_worker_with_another_signing_key_logs_an_error_and_sends_nothing(
    make_settings: SettingsFactory, clean_postgres: str, clean_redis: str, caplog: pytest.LogCaptureFixture
) -> None:
    # given an API and a worker that were given different URL signing secrets (a misconfiguration)
    def process(secret: str) -> Any:
        return running_app(
            make_settings(
                database_url=clean_postgres, redis_url=clean_redis, task_queue_name=QUEUE, url_signing_secret=secret
            )
        )

    api_secret, worker_secret = "the API's secret, 32 characters or more", "the worker's own secret, also long"
    async with process(api_secret) as api, process(worker_secret) as worker:
        await register_user(api, "ada@example.com")
        before = len(await messages(api))
        # when a reset is asked for through the API, and the worker runs its task
        await api.execute(REQUEST, {"email": "ada@example.com"})
        (queued,) = (await messages(api))[before:]
        reset_id = uuid.UUID(queued["kwargs"]["reset_id"])
        worker_services: Services = worker.app.state.services
        with caplog.at_level("ERROR", logger="genhub.accounts"):
            sent = await worker_services.passwords.reset_email(reset_id)
        # then nothing is sent (the link would not work), and the mismatch is an error naming the cause
        assert sent is None
        errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
        assert len(errors) == 1 and str(reset_id) in errors[0] and "URL_SIGNING_SECRET" in errors[0]
        # and a process with the API's key sends the link
        api_services: Services = api.app.state.services
        mail = await api_services.passwords.reset_email(reset_id)
        assert mail is not None and mail.to == "ada@example.com"
