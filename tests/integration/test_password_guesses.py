"""Budgets of password guesses: login's per account (anyone may spend it with the e-mail), and the
signed-in user's own one shared by changePassword and deleteAccount, so guessing through one of
those exhausts the other while failed logins lock no signed-in user out (real app, PostgreSQL; the
windows in Redis, and in the process as without REDIS_URL)."""

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


#: The mutations that check the signed-in user's current password: one budget between them.
SIGNED_IN: dict[str, Attempt] = {"changePassword": _change, "deleteAccount": _delete}


@pytest.fixture(params=["redis", "in-process"])
def windows(request: pytest.FixtureRequest) -> dict[str, str]:
    """Where the windows are kept: in a flushed Redis with REDIS_URL, in the process without it."""
    return {"redis_url": request.getfixturevalue("clean_redis")} if request.param == "redis" else {}


@pytest.fixture
async def client(
    make_settings: SettingsFactory, clean_postgres: str, windows: dict[str, str]
) -> AsyncIterator[GraphQLClient]:
    settings = make_settings(
        database_url=clean_postgres, rate_limit_login_account=BUDGET, rate_limit_login=1000, **windows
    )
    async with running_app(settings) as c:
        yield c


@pytest.mark.parametrize("guessed_through", list(SIGNED_IN))
async def test_guesses_through_one_signed_in_path_exhaust_the_other(
    client: GraphQLClient, guessed_through: str
) -> None:
    # given a signed-in user whose whole budget of wrong guesses was spent through one mutation
    email = f"{guessed_through.lower()}@example.com"
    token = (await register_user(client, email, PASSWORD))["accessToken"]
    guess = SIGNED_IN[guessed_through]
    answers = [await guess(client, email, token, f"guess number {i}") for i in range(BUDGET)]
    assert answers == ["InvalidCredentials"] * BUDGET
    # when the right password is tried through both mutations that check the current one
    tried = {name: await attempt(client, email, token, PASSWORD) for name, attempt in SIGNED_IN.items()}
    # then both wait: the budget is the user's, not the mutation's
    assert tried == dict.fromkeys(SIGNED_IN, "RateLimited")
    # and signing in is not blocked by it: login's budget is its own
    assert await _login(client, email, "", PASSWORD) == "AuthPayload"


@pytest.mark.parametrize("checked_by", list(SIGNED_IN))
async def test_failed_logins_by_anyone_do_not_lock_the_signed_in_user_out(
    client: GraphQLClient, checked_by: str
) -> None:
    # given a signed-in user, and strangers who spent login's whole budget for the user's e-mail
    email = f"victim-{checked_by.lower()}@example.com"
    token = (await register_user(client, email, PASSWORD))["accessToken"]
    answers = [await _login(client, email, "", f"guess number {i}") for i in range(BUDGET)]
    assert answers == ["InvalidCredentials"] * BUDGET
    assert await _login(client, email, "", PASSWORD) == "RateLimited"
    # when the user confirms a change with the right password
    answer = await SIGNED_IN[checked_by](client, email, token, PASSWORD)
    # then it goes through
    assert answer == {"changePassword": "ChangePasswordSuccess", "deleteAccount": "DeleteAccountSuccess"}[checked_by]


async def test_other_accounts_keep_their_budget(client: GraphQLClient) -> None:
    # given one account's budget spent
    await register_user(client, "spent@example.com", PASSWORD)
    for i in range(BUDGET):
        await _login(client, "spent@example.com", "", f"guess number {i}")
    # when another account signs in
    # then it is let in
    await register_user(client, "other@example.com", PASSWORD)
    assert await _login(client, "other@example.com", "", PASSWORD) == "AuthPayload"
