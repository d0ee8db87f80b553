"""Rate limits on real Redis through the app: per IP (login, register, generate, uploads) and per user.

With REDIS_URL set the limiter is RedisRateLimiter, so two app instances (two replicas)
share every bucket. Generation tasks go to the broker the process was started with; these
tests only need `generate` to be accepted or refused, not to run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from tests.fixtures.app import GraphQLClient, SettingsFactory, register_user, running_app
from tests.fixtures.waiting import eventually
from tests.integration.board_world import GENERATE, add_model, grant

pytestmark = pytest.mark.redis

LOGIN = """
mutation Login($email: String!) {
  login(input: {email: $email, password: "wrong password 123"}) {
    __typename
    ... on RateLimited { retryAfterSeconds code message }
  }
}
"""
REGISTER = """
mutation Register($email: String!) {
  register(input: {email: $email, password: "correct horse battery"}) {
    __typename
    ... on RateLimited { retryAfterSeconds }
  }
}
"""
GENERATE_LIMITED = GENERATE.replace("... on Error { code message }", "... on RateLimited { retryAfterSeconds }")
REQUEST_UPLOAD = """
mutation Ask {
  requestChunkUpload(input: {filename: "a.png", contentType: "image/png", size: 10}) {
    __typename
    ... on RateLimited { retryAfterSeconds }
  }
}
"""


def from_ip(client: GraphQLClient, address: str) -> GraphQLClient:
    """The same app seen from another client address."""
    transport = httpx.ASGITransport(app=client.app, client=(address, 40000))
    return GraphQLClient(httpx.AsyncClient(transport=transport, base_url="http://testserver"), client.app)


@pytest.fixture
def limited(make_settings: SettingsFactory, clean_redis: str) -> Any:
    def build(**overrides: Any) -> Any:
        return make_settings(**{"redis_url": clean_redis, "rate_limit_window_seconds": 60, **overrides})

    return build


@pytest.fixture
async def redis(clean_redis: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(clean_redis)
    yield client
    await client.aclose()


async def test_login_is_limited_per_ip_across_replicas(limited: Any, redis: aioredis.Redis) -> None:
    # given two app instances (replicas) sharing one Redis, 3 logins per minute per address
    settings = limited(rate_limit_login=3)
    async with running_app(settings) as replica_a, running_app(settings) as replica_b:
        # when one address tries 4 times, alternating replicas
        kinds = []
        for attempt in range(4):
            client = replica_a if attempt % 2 == 0 else replica_b
            body = await client.execute(LOGIN, {"email": f"victim{attempt}@example.com"})
            kinds.append(body["data"]["login"])
        # and another address tries once
        other = from_ip(replica_a, "10.1.2.3")
        elsewhere = (await other.execute(LOGIN, {"email": "victim@example.com"}))["data"]["login"]
        await other.http.aclose()
    # then the 4th is refused with a retry time, whichever replica served it
    assert [k["__typename"] for k in kinds] == ["InvalidCredentials"] * 3 + ["RateLimited"]
    assert kinds[3]["code"] == "RATE_LIMITED"
    assert 1 <= kinds[3]["retryAfterSeconds"] <= 60
    assert elsewhere["__typename"] == "InvalidCredentials"
    # and the bucket lives in Redis
    assert await redis.zcard("rl:login:ip:127.0.0.1") == 3
    assert await redis.zcard("rl:login:ip:10.1.2.3") == 1


async def test_register_is_limited_per_ip(limited: Any) -> None:
    async with running_app(limited(rate_limit_register=2)) as client:
        kinds = [
            (await client.execute(REGISTER, {"email": f"new{n}@example.com"}))["data"]["register"] for n in range(3)
        ]
    assert [k["__typename"] for k in kinds] == ["AuthPayload", "AuthPayload", "RateLimited"]
    assert kinds[2]["retryAfterSeconds"] >= 1


async def test_generate_is_limited_per_user_and_per_ip(limited: Any) -> None:
    # given 2 generations per minute per user, and per address 2 x 2 = 4
    async with running_app(limited(rate_limit_generate=2, rate_limit_ip_multiplier=2)) as client:
        model_id = await add_model(client)
        users = [await register_user(client, f"gen{n}@example.com") for n in range(3)]
        for user in users:
            await grant(client, user["user"]["id"], 1000)

        async def start(user: dict[str, Any]) -> dict[str, Any]:
            body = await client.execute(GENERATE_LIMITED, {"modelId": model_id}, token=user["accessToken"])
            result: dict[str, Any] = body["data"]["generate"]
            return result

        first = [await start(users[0]) for _ in range(3)]
        second = [await start(users[1]) for _ in range(2)]
        third = await start(users[2])
    # then the first user's third call hits the per-user limit
    assert [r["__typename"] for r in first] == ["GenerateSuccess", "GenerateSuccess", "RateLimited"]
    # and the refused call was counted in no bucket: the address takes two more, from another user
    assert [r["__typename"] for r in second] == ["GenerateSuccess", "GenerateSuccess"]
    # and then the address (4 starts) is full even for a fresh user
    assert third["__typename"] == "RateLimited"
    assert third["retryAfterSeconds"] >= 1


async def test_upload_requests_are_limited_per_user(limited: Any) -> None:
    async with running_app(limited(rate_limit_upload=1)) as client:
        user = await register_user(client, "uploader@example.com")
        kinds = [
            (await client.execute(REQUEST_UPLOAD, token=user["accessToken"]))["data"]["requestChunkUpload"]
            for _ in range(2)
        ]
    assert [k["__typename"] for k in kinds] == ["ChunkUploadTicket", "RateLimited"]


async def bucket_gone(redis: aioredis.Redis, key: str) -> bool:
    """Whether Redis has expired a bucket's key (it lives one window past its last counted hit)."""
    return not await redis.exists(key)


async def test_the_window_slides(limited: Any, redis: aioredis.Redis) -> None:
    # given one login per second
    async with running_app(limited(rate_limit_login=1, rate_limit_window_seconds=1)) as client:
        first = (await client.execute(LOGIN, {"email": "a@example.com"}))["data"]["login"]
        second = (await client.execute(LOGIN, {"email": "a@example.com"}))["data"]["login"]
        # the window runs on Redis's clock, which the test cannot move: wait until Redis expires the bucket
        await eventually(lambda: bucket_gone(redis, "rl:login:ip:127.0.0.1"), what="the 1 s window to pass", timeout=5)
        third = (await client.execute(LOGIN, {"email": "a@example.com"}))["data"]["login"]
    # then the second waits at most a second, the third (after the window) passes
    assert first["__typename"] == "InvalidCredentials"
    assert second == {
        "__typename": "RateLimited",
        "retryAfterSeconds": 1,
        "code": "RATE_LIMITED",
        "message": second["message"],
    }
    assert third["__typename"] == "InvalidCredentials"
