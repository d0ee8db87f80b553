"""One budget of password guesses per account: wrong passwords given to login, changePassword and
deleteAccount all count in it, so guessing through one path exhausts the others (real app, PostgreSQL;
the windows in Redis, and in the process as without REDIS_URL)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tests.fixtures.app import GraphQLClient, SettingsFactory, register_user, running_app

pytestmark = pytest.mark.postgres

PASSWORD = "correct horse battery"
BUDGET = 3
LOGIN = """
mutation Login($email: String!, $password: String!) {
  login(input: {email: $email, password: $password}) { __typename }
}
"""
CHANGE = """
mutation Change($current: String!, $new: String!) {
  changePassword(input: {currentPassword: $current, newPassword: $new}) { __typename }
}
"""
DELETE_ACCOUNT = "mutation Delete($password: String!) { deleteAccount(input: {password: $password}) { __typename } }"

#: Tries `password` for the account (e-mail, access token) through one mutation: the answer's type.
Attempt = Callable[[GraphQLClient, str, str, str], Awaitable[str]]


async def _login(client: GraphQLClient, email: str, token: str, password: str) -> str:
    body = await client.execute(LOGIN, {"email": email, "password": password})
    return str(body["data"]["login"]["__typename"])


async def _change(client: GraphQLClient, email: str, token: str, password: str) -> str:
    body = await client.execute(CHANGE, {"current": password, "new": "a brand new passphrase"}, token=token)
    return str(body["data"]["changePassword"]["__typename"])


async def _delete(client: GraphQLClient, email: str, token: str, password: str) -> str:
    body = await client.execute(DELETE_ACCOUNT, {"password": password}, token=token)
    return str(body["data"]["deleteAccount"]["__typename"])


PATHS: dict[str, Attempt] = {"login": _login, "changePassword": _change, "deleteAccount": _delete}


@pytest.fixture(params=["redis", "in-process"])
def windows(request: pytest.FixtureRequest) -> dict[str, str]:
    """Where the windows are kept: in Redis with REDIS_URL, in the process without it."""
    return {"redis_url": request.getfixturevalue("redis_url")} if request.param == "redis" else {}


@pytest.fixture
async def client(
    make_settings: SettingsFactory, clean_postgres: str, windows: dict[str, str]
) -> AsyncIterator[GraphQLClient]:
    settings = make_settings(
        database_url=clean_postgres, rate_limit_login_account=BUDGET, rate_limit_login=1000, **windows
    )
    async with running_app(settings) as c:
        yield c


@pytest.mark.parametrize("guessed_through", list(PATHS))
async def test_guesses_through_one_path_exhaust_the_others(client: GraphQLClient, guessed_through: str) -> None:
    # given an account, and the account's whole budget of wrong guesses spent through one mutation
    email = f"{guessed_through.lower()}@example.com"
    token = (await register_user(client, email, PASSWORD))["accessToken"]
    guess = PATHS[guessed_through]
    answers = [await guess(client, email, token, f"guess number {i}") for i in range(BUDGET)]
    assert answers == ["InvalidCredentials"] * BUDGET
    # when the right password is tried through every mutation that checks one
    tried = {name: await attempt(client, email, token, PASSWORD) for name, attempt in PATHS.items()}
    # then every one of them waits: the budget is the account's, not the mutation's
    assert tried == dict.fromkeys(PATHS, "RateLimited")


async def test_other_accounts_keep_their_budget(client: GraphQLClient) -> None:
    # given one account's budget spent
    await register_user(client, "spent@example.com", PASSWORD)
    for i in range(BUDGET):
        await _login(client, "spent@example.com", "", f"guess number {i}")
    # when another account signs in
    # then it is let in
    await register_user(client, "other@example.com", PASSWORD)
    assert await _login(client, "other@example.com", "", PASSWORD) == "AuthPayload"
