"""Redis killed under a running API (a private redis-server): generate is accepted and its submit left to
the sweep, the login throttle is still enforced in process, and everything is back on Redis when it returns."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis
from sqlalchemy import text

from tests.fixtures.app import (
    GraphQLClient,
    SettingsFactory,
    operator_grant,
    operator_model,
    register_user,
    running_app,
)
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.waiting import eventually
from tests.outage_table import expected_answer

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

GENERATE = """
mutation Generate($input: GenerateInput!) {
  generate(input: $input) { __typename ... on GenerateSuccess { generation { id status } } ... on Error { code } }
}
"""
LOGIN = """mutation Login($e: String!, $p: String!) { login(input: {email: $e, password: $p}) {
  __typename ... on RateLimited { retryAfterSeconds } } }"""
PASSWORD = "correct horse battery"
LOGINS_PER_ADDRESS = 3
QUEUE = "genhub:tasks:outage-test"


@pytest.fixture
async def client(
    clean_postgres: str, redis_server: RedisServer, make_settings: SettingsFactory
) -> AsyncIterator[GraphQLClient]:
    settings = make_settings(
        database_url=clean_postgres,
        redis_url=redis_server.url,
        task_queue_name=QUEUE,
        rate_limit_login=LOGINS_PER_ADDRESS,
        rate_limit_login_account=1000,
    )
    async with running_app(settings) as c:
        yield c


async def queued_messages(url: str) -> int:
    redis = Redis.from_url(url)
    try:
        return int(await redis.xlen(QUEUE))
    finally:
        await redis.aclose()


async def test_redis_down_generate_is_accepted_and_throttles_hold(
    client: GraphQLClient, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    # given a user with credits
    user = await register_user(client, f"redis-{uuid.uuid4().hex[:8]}@example.com", PASSWORD)
    user_id, email = uuid.UUID(user["user"]["id"]), user["user"]["email"]
    await operator_grant(client, str(user_id), 100)
    model_id = await operator_model(client, cost=10)
    me = client.as_user(user["accessToken"])

    # when Redis is killed
    redis_server.stop()
    caplog.set_level(logging.WARNING)
    # then generate is accepted, as the table says, and its credits are held
    body = await me.execute(GENERATE, {"input": {"modelId": model_id, "prompt": "during the outage"}})
    assert body["data"]["generate"]["__typename"] == "GenerateSuccess"
    assert "GenerateSuccess" in expected_answer("generate", "Redis")
    generation_id = uuid.UUID(body["data"]["generate"]["generation"]["id"])
    async with client.container.uow() as uow:
        account = await uow.credits.balance(user_id)
        assert account == await uow.credits.ledger_totals(user_id)
        assert (account.balance, account.reserved) == (100, 10)
        row = (
            await uow.session.execute(
                text("SELECT status, next_attempt_at FROM generations WHERE id = :g"), {"g": generation_id}
            )
        ).one()
    # and its submit is due for the poll sweep now, not after the submit lease
    assert row.status == "queued"
    assert row.next_attempt_at is not None and row.next_attempt_at <= datetime.now(UTC)

    # and the login throttle is still enforced, counted in this process
    answers = [
        (await client.execute(LOGIN, {"e": email, "p": "wrong password"}))["data"]["login"]["__typename"]
        for _ in range(LOGINS_PER_ADDRESS + 1)
    ]
    assert answers == ["InvalidCredentials"] * LOGINS_PER_ADDRESS + ["RateLimited"]
    assert "counted in each process" in expected_answer("login", "Redis")
    assert not [r for r in caplog.records if "unexpected error" in r.getMessage()]

    # when Redis is back (empty: it kept no data)
    redis_server.start()

    # then the limits are counted in Redis again (its window is empty: the login is not refused)
    async def login_counts_in_redis() -> bool:
        answer = await client.execute(LOGIN, {"e": email, "p": PASSWORD})
        return bool(answer["data"]["login"]["__typename"] == "AuthPayload")

    await eventually(login_counts_in_redis, what="the login throttle back on Redis", timeout=10, every=0.2)
    # and a generate is queued on Redis again
    body = await me.execute(GENERATE, {"input": {"modelId": model_id, "prompt": "after the outage"}})
    assert body["data"]["generate"]["__typename"] == "GenerateSuccess"
    assert await queued_messages(redis_server.url) == 1
