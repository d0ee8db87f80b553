"""Auth on PostgreSQL through the real ASGI app: register, login, refresh rotation, me, bad tokens."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from infrastructure.settings import DEV_JWT_SECRET
from tests.fixtures.app import REGISTER, GraphQLClient, SettingsFactory, register_user, running_app

pytestmark = pytest.mark.postgres

LOGIN = """
mutation Login($email: String!, $password: String!) {
  login(input: {email: $email, password: $password}) {
    __typename
    ... on AuthPayload { accessToken refreshToken user { email } }
    ... on Error { code message }
  }
}
"""
REFRESH = """
mutation Refresh($token: String!) {
  refreshToken(refreshToken: $token) {
    __typename
    ... on AuthPayload { accessToken refreshToken }
    ... on Error { code message }
  }
}
"""
ME = "query Me { me { id email role createdAt } }"


@pytest.fixture
async def client(clean_postgres: str, make_settings: SettingsFactory) -> AsyncIterator[GraphQLClient]:
    async with running_app(make_settings(database_url=clean_postgres)) as c:
        yield c


async def test_register_then_me(client: GraphQLClient) -> None:
    # given a new account
    auth = await register_user(client, "  Alice@Example.COM ")
    # when it asks who it is
    body = await client.execute(ME, token=auth["accessToken"])
    # then the e-mail is normalised and the role is USER
    assert body["data"]["me"]["email"] == "alice@example.com"
    assert body["data"]["me"]["role"] == "USER"
    assert auth["expiresIn"] == 900


async def test_me_is_null_when_anonymous(client: GraphQLClient) -> None:
    assert (await client.execute(ME))["data"] == {"me": None}


async def test_register_twice_is_email_taken(client: GraphQLClient) -> None:
    await register_user(client, "bob@example.com")
    body = await client.execute(REGISTER, {"email": "BOB@example.com", "password": "another password 1"})
    assert body["data"]["register"]["__typename"] == "EmailTaken"


async def test_concurrent_registrations_of_one_email_create_one_account(client: GraphQLClient) -> None:
    results = await asyncio.gather(
        *[
            client.execute(REGISTER, {"email": "race@example.com", "password": "correct horse battery"})
            for _ in range(5)
        ]
    )
    kinds = sorted(r["data"]["register"]["__typename"] for r in results)
    assert kinds == ["AuthPayload"] + ["EmailTaken"] * 4


@pytest.mark.parametrize(
    ("email", "password", "field"),
    [("not-an-email", "long enough password", "email"), ("carol@example.com", "short", "password")],
)
async def test_register_validates_input(client: GraphQLClient, email: str, password: str, field: str) -> None:
    body = await client.execute(REGISTER, {"email": email, "password": password})
    result = body["data"]["register"]
    assert result["__typename"] == "InvalidInput"
    assert [f["field"] for f in result["fields"]] == [field]


async def test_login_gives_no_hint_which_part_was_wrong(client: GraphQLClient) -> None:
    await register_user(client, "dave@example.com")
    wrong_password = (await client.execute(LOGIN, {"email": "dave@example.com", "password": "wrong password!"}))["data"]
    unknown_email = (await client.execute(LOGIN, {"email": "nobody@example.com", "password": "wrong password!"}))[
        "data"
    ]
    assert wrong_password["login"] == unknown_email["login"]
    assert wrong_password["login"]["__typename"] == "InvalidCredentials"


async def test_login_succeeds_with_the_right_password(client: GraphQLClient) -> None:
    await register_user(client, "erin@example.com")
    body = await client.execute(LOGIN, {"email": "ERIN@example.com", "password": "correct horse battery"})
    assert body["data"]["login"]["__typename"] == "AuthPayload"


async def test_refresh_rotates_and_a_reused_token_revokes_the_family(client: GraphQLClient) -> None:
    # given a session
    first = await register_user(client, "frank@example.com")
    # when the refresh token is used once
    rotated = (await client.execute(REFRESH, {"token": first["refreshToken"]}))["data"]["refreshToken"]
    assert rotated["__typename"] == "AuthPayload"
    assert rotated["refreshToken"] != first["refreshToken"]
    # and then the spent token is presented again
    reused = (await client.execute(REFRESH, {"token": first["refreshToken"]}))["data"]["refreshToken"]
    # then it is rejected, and the whole family (including the newest token) is revoked
    assert reused["__typename"] == "InvalidCredentials"
    after = (await client.execute(REFRESH, {"token": rotated["refreshToken"]}))["data"]["refreshToken"]
    assert after["__typename"] == "InvalidCredentials"


async def test_concurrent_refreshes_of_one_token_succeed_once(client: GraphQLClient) -> None:
    auth = await register_user(client, "gina@example.com")
    results = await asyncio.gather(*[client.execute(REFRESH, {"token": auth["refreshToken"]}) for _ in range(4)])
    kinds = [r["data"]["refreshToken"]["__typename"] for r in results]
    assert kinds.count("AuthPayload") <= 1
    assert kinds.count("InvalidCredentials") >= 3


async def test_garbage_refresh_token_is_invalid_credentials(client: GraphQLClient) -> None:
    body = await client.execute(REFRESH, {"token": "not-a-token"})
    assert body["data"]["refreshToken"]["__typename"] == "InvalidCredentials"


def _token(secret: str, **claims: object) -> str:
    now = datetime.now(UTC)
    base: dict[str, object] = {
        "sub": "7b0f1c3e-8f1e-4a51-9a55-3d1c1b2a9e10",
        "role": "user",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
        "iss": "genhub",
        "typ": "access",
    }
    base.update(claims)
    return jwt.encode(base, secret, algorithm="HS256")


@pytest.mark.parametrize(
    "make_token",
    [
        lambda secret: "garbage",
        lambda secret: _token(secret, exp=int((datetime.now(UTC) - timedelta(minutes=1)).timestamp())),
        lambda secret: jwt.encode(
            {"sub": "x", "exp": 9999999999, "iat": 1}, "another-secret-that-is-long-enough-000", algorithm="HS256"
        ),
        lambda secret: _token(secret, typ="refresh"),
        # the default secret of earlier releases, published in their source
        lambda secret: _token(DEV_JWT_SECRET, role="admin"),
    ],
    ids=["garbage", "expired", "wrong-key", "wrong-type", "published-secret"],
)
async def test_bad_token_gets_unauthenticated_not_500(client: GraphQLClient, make_token: Callable[[str], str]) -> None:
    token = make_token(client.app.state.settings.effective_jwt_secret)
    response = await client.http.post("/graphql", json={"query": ME}, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    body = response.json()
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "Traceback" not in response.text


async def test_protected_field_without_token_is_unauthenticated(client: GraphQLClient) -> None:
    body = await client.execute("{ credits { balance } }", expect_errors=True)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
