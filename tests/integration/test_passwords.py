"""changePassword, requestPasswordReset/resetPassword, logout and logoutEverywhere on PostgreSQL, through
the real app (embedded mode: the send_email task runs in-process and writes the local outbox, or sends
over SMTP to an in-process aiosmtpd server)."""

from __future__ import annotations

import asyncio
import re
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Callable
from email import message_from_bytes
from email import policy as email_policy
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.users import Role, refresh_token_hash
from infrastructure.mail.factory import outbox_of
from tests.fixtures.app import GraphQLClient, SettingsFactory, register_user, running_app
from tests.fixtures.smtp import InProcessSmtp
from tests.fixtures.waiting import eventually
from tests.integration.asgi_websocket import AsgiWebSocket, WebSocketClosed

pytestmark = pytest.mark.postgres

PASSWORD = "correct horse battery"
NEW_PASSWORD = "a brand new passphrase"
ME = "query Me { me { id } }"
LOGIN = """
mutation Login($email: String!, $password: String!) {
  login(input: {email: $email, password: $password}) {
    __typename ... on AuthPayload { accessToken refreshToken } ... on Error { code message }
  }
}
"""
REFRESH = """
mutation Refresh($token: String!) {
  refreshToken(refreshToken: $token) { __typename ... on AuthPayload { accessToken refreshToken } ... on Error { code } }
}
"""
CHANGE = """
mutation Change($current: String!, $new: String!) {
  changePassword(input: {currentPassword: $current, newPassword: $new}) {
    __typename
    ... on ChangePasswordSuccess { accessToken expiresIn }
    ... on Error { code message }
    ... on InvalidInput { fields { field message } }
    ... on RateLimited { retryAfterSeconds }
  }
}
"""
REQUEST = """
mutation Request($email: String!) {
  requestPasswordReset(email: $email) {
    __typename
    ... on RequestPasswordResetSuccess { email }
    ... on Error { code message }
    ... on InvalidInput { fields { field message } }
  }
}
"""
RESET = """
mutation Reset($token: String!, $new: String!) {
  resetPassword(input: {token: $token, newPassword: $new}) {
    __typename
    ... on ResetPasswordSuccess { email }
    ... on Error { code message }
    ... on InvalidInput { fields { field message } }
  }
}
"""
LOGOUT = "mutation Logout { logout { __typename ... on LogoutSuccess { everywhere } ... on Error { code } } }"
LOGOUT_EVERYWHERE = (
    "mutation Everywhere { logoutEverywhere { __typename ... on LogoutSuccess { everywhere } ... on Error { code } } }"
)
CREDITS = "subscription Credits { creditsChanged { available } }"
LINK = re.compile(r"http://testserver/demo#reset=([A-Za-z0-9_-]+)")


def codes(body: dict[str, Any]) -> set[str]:
    return {str((e.get("extensions") or {}).get("code")) for e in body.get("errors") or []}


async def admitted(client: GraphQLClient, token: str) -> bool:
    body = await client.execute(ME, token=token, expect_errors=True)
    if codes(body) == {"UNAUTHENTICATED"}:
        return False
    assert "errors" not in body, body
    return True


async def login(client: GraphQLClient, email: str, password: str) -> dict[str, Any]:
    result: dict[str, Any] = (await client.execute(LOGIN, {"email": email, "password": password}))["data"]["login"]
    return result


async def refreshed(client: GraphQLClient, token: str) -> str:
    result: dict[str, Any] = (await client.execute(REFRESH, {"token": token}))["data"]["refreshToken"]
    return str(result["__typename"])


async def mutate(client: GraphQLClient, query: str, variables: dict[str, Any], token: str | None = None) -> Any:
    body = await client.execute(query, variables, token=token)
    return next(iter(body["data"].values()))


@pytest.fixture
def app_settings(make_settings: SettingsFactory, clean_postgres: str) -> Callable[..., Any]:
    def build(**overrides: Any) -> Any:
        return make_settings(database_url=clean_postgres, public_base_url="http://testserver", **overrides)

    return build


@pytest.fixture
async def client(app_settings: Callable[..., Any]) -> AsyncIterator[GraphQLClient]:
    async with running_app(app_settings()) as c:
        yield c


async def reset_links(client: GraphQLClient, address: str, count: int = 1) -> list[str]:
    """The tokens of the reset links e-mailed to `address` (the local outbox), once `count` are there."""
    outbox = outbox_of(client.container.settings)

    def tokens() -> list[str]:
        found = []
        for entry in outbox.entries():
            if entry.to == address:
                raw = outbox.read(entry.id)
                assert raw is not None
                body = message_from_bytes(raw, policy=email_policy.default).get_body(preferencelist=("plain",))
                assert body is not None
                found += LINK.findall(body.get_content())
        return found

    await eventually(lambda: len(tokens()) >= count, what=f"{count} reset e-mail(s) to {address}", timeout=5)
    return tokens()


# ------------------------------------------------------------------ changePassword


async def test_changing_the_password_ends_every_other_session_and_keeps_this_one(client: GraphQLClient) -> None:
    # given two sessions of one account
    this = await register_user(client, "ada@example.com", PASSWORD)
    other = await login(client, "ada@example.com", PASSWORD)
    # when the first changes the password
    changed = await mutate(client, CHANGE, {"current": PASSWORD, "new": NEW_PASSWORD}, this["accessToken"])
    assert changed["__typename"] == "ChangePasswordSuccess" and changed["expiresIn"] == 900
    # then the answer's token works, the token sent with the request and the other session's do not
    assert await admitted(client, changed["accessToken"])
    assert not await admitted(client, this["accessToken"])
    assert not await admitted(client, other["accessToken"])
    # and this session's refresh token still works, the other's does not
    assert await refreshed(client, other["refreshToken"]) == "InvalidCredentials"
    assert await refreshed(client, this["refreshToken"]) == "AuthPayload"
    # and only the new password signs in
    assert (await login(client, "ada@example.com", PASSWORD))["__typename"] == "InvalidCredentials"
    assert (await login(client, "ada@example.com", NEW_PASSWORD))["__typename"] == "AuthPayload"


async def test_a_wrong_current_password_changes_nothing(client: GraphQLClient) -> None:
    this = await register_user(client, "bob@example.com", PASSWORD)
    answer = await mutate(client, CHANGE, {"current": "not the password", "new": NEW_PASSWORD}, this["accessToken"])
    assert answer["__typename"] == "InvalidCredentials"
    assert await admitted(client, this["accessToken"])
    assert (await login(client, "bob@example.com", PASSWORD))["__typename"] == "AuthPayload"


@pytest.mark.parametrize(
    ("new", "problem"),
    [("short", "at least 10"), ("x" * 257, "at most 256"), ("aaaaaaaaaaaa", "too simple"), (PASSWORD, "must differ")],
)
async def test_a_new_password_registration_would_refuse_is_invalid_input(
    client: GraphQLClient, new: str, problem: str
) -> None:
    this = await register_user(client, f"{uuid.uuid4().hex[:8]}@example.com", PASSWORD)
    answer = await mutate(client, CHANGE, {"current": PASSWORD, "new": new}, this["accessToken"])
    assert answer["__typename"] == "InvalidInput"
    assert answer["fields"][0]["field"] == "newPassword" and problem in answer["fields"][0]["message"]
    assert await admitted(client, this["accessToken"])


async def test_changing_the_password_needs_a_signed_in_caller(client: GraphQLClient) -> None:
    body = await client.execute(CHANGE, {"current": PASSWORD, "new": NEW_PASSWORD}, expect_errors=True)
    assert codes(body) == {"UNAUTHENTICATED"}


async def test_guessing_the_current_password_is_rate_limited(app_settings: Callable[..., Any]) -> None:
    async with running_app(app_settings(rate_limit_login_account=3)) as client:
        this = await register_user(client, "guess@example.com", PASSWORD)
        answers = [
            (await mutate(client, CHANGE, {"current": f"guess {n} wrong", "new": NEW_PASSWORD}, this["accessToken"]))[
                "__typename"
            ]
            for n in range(4)
        ]
        assert answers == ["InvalidCredentials"] * 3 + ["RateLimited"]
        # the right password is refused too while limited: guessing gains nothing
        right = await mutate(client, CHANGE, {"current": PASSWORD, "new": NEW_PASSWORD}, this["accessToken"])
        assert right["__typename"] == "RateLimited"


async def test_of_two_concurrent_changes_from_one_password_exactly_one_wins(client: GraphQLClient) -> None:
    this = await register_user(client, "race@example.com", PASSWORD)
    answers = await asyncio.gather(
        *(
            mutate(client, CHANGE, {"current": PASSWORD, "new": f"{NEW_PASSWORD} {n}"}, this["accessToken"])
            for n in range(2)
        )
    )
    kinds = sorted(a["__typename"] for a in answers)
    assert kinds == ["ChangePasswordSuccess", "InvalidCredentials"]
    [winner] = [n for n, a in enumerate(answers) if a["__typename"] == "ChangePasswordSuccess"]
    assert (await login(client, "race@example.com", f"{NEW_PASSWORD} {winner}"))["__typename"] == "AuthPayload"


# ------------------------------------------------------------------ logout, logoutEverywhere


async def test_logout_ends_this_session_only(client: GraphQLClient) -> None:
    this = await register_user(client, "out@example.com", PASSWORD)
    other = await login(client, "out@example.com", PASSWORD)
    assert (await mutate(client, LOGOUT, {}, this["accessToken"])) == {
        "__typename": "LogoutSuccess",
        "everywhere": False,
    }
    assert not await admitted(client, this["accessToken"])
    assert await refreshed(client, this["refreshToken"]) == "InvalidCredentials"
    assert await admitted(client, other["accessToken"])
    assert await refreshed(client, other["refreshToken"]) == "AuthPayload"
    # a replay of the logout with the same token is refused as unauthenticated
    assert codes(await client.execute(LOGOUT, token=this["accessToken"], expect_errors=True)) == {"UNAUTHENTICATED"}


async def test_logout_with_a_token_of_no_session_is_invalid_state(client: GraphQLClient) -> None:
    user = await register_user(client, "cli@example.com", PASSWORD)
    minted = client.container.tokens.issue_access(uuid.UUID(user["user"]["id"]), Role.USER).token  # as the CLI does
    assert (await mutate(client, LOGOUT, {}, minted))["__typename"] == "InvalidState"
    assert (await mutate(client, LOGOUT_EVERYWHERE, {}, minted))["everywhere"] is True
    assert not await admitted(client, minted)


async def test_logout_everywhere_ends_every_session_and_closes_open_subscriptions(client: GraphQLClient) -> None:
    # given two sessions, one with an open subscription
    this = await register_user(client, "all@example.com", PASSWORD)
    other = await login(client, "all@example.com", PASSWORD)
    async with AsgiWebSocket(client.app) as ws:
        await ws.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {other['accessToken']}"}})
        assert (await ws.receive_json())["type"] == "connection_ack"
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": CREDITS}})
        await eventually(lambda: client.container.access_gate.watched() == 1, what="the connection watched")
        # when the first signs out everywhere
        answer = await mutate(client, LOGOUT_EVERYWHERE, {}, this["accessToken"])
        assert answer == {"__typename": "LogoutSuccess", "everywhere": True}
        # then the subscription's connection is closed with 4401
        with pytest.raises(WebSocketClosed) as closed:
            while True:
                await ws.receive_json(timeout=2)
        assert closed.value.code == 4401
    # and every token of both sessions is dead
    for token in (this["accessToken"], other["accessToken"]):
        assert not await admitted(client, token)
    for token in (this["refreshToken"], other["refreshToken"]):
        assert await refreshed(client, token) == "InvalidCredentials"
    assert (await login(client, "all@example.com", PASSWORD))["__typename"] == "AuthPayload"


# ------------------------------------------------------------------ password reset


async def test_a_reset_link_works_once_and_ends_every_session(client: GraphQLClient, postgres_dsn: str) -> None:
    # given a signed-in account that forgot its password
    session = await register_user(client, "reset@example.com", PASSWORD)
    # when it asks for a reset (the address written as a person might)
    answer = await mutate(client, REQUEST, {"email": "  Reset@Example.com "})
    assert answer == {"__typename": "RequestPasswordResetSuccess", "email": "reset@example.com"}
    [token] = await reset_links(client, "reset@example.com")
    # then the database keeps only the token's hash
    conn = await asyncpg.connect(postgres_dsn)
    try:
        stored = await conn.fetch("SELECT token_hash FROM password_resets")
    finally:
        await conn.close()
    assert [r["token_hash"] for r in stored] == [refresh_token_hash(token)]
    # when the link is used
    done = await mutate(client, RESET, {"token": token, "new": NEW_PASSWORD})
    assert done == {"__typename": "ResetPasswordSuccess", "email": "reset@example.com"}
    # then every session ended and only the new password signs in
    assert not await admitted(client, session["accessToken"])
    assert await refreshed(client, session["refreshToken"]) == "InvalidCredentials"
    assert (await login(client, "reset@example.com", PASSWORD))["__typename"] == "InvalidCredentials"
    assert (await login(client, "reset@example.com", NEW_PASSWORD))["__typename"] == "AuthPayload"
    # and the link does not work twice
    again = await mutate(client, RESET, {"token": token, "new": "yet another passphrase"})
    assert again["__typename"] == "InvalidCredentials"
    assert (await login(client, "reset@example.com", NEW_PASSWORD))["__typename"] == "AuthPayload"


async def test_an_unknown_address_gets_the_same_answer_and_no_mail(client: GraphQLClient) -> None:
    await register_user(client, "known@example.com", PASSWORD)
    known = await mutate(client, REQUEST, {"email": "known@example.com"})
    unknown = await mutate(client, REQUEST, {"email": "nobody@example.com"})
    assert known["__typename"] == unknown["__typename"] == "RequestPasswordResetSuccess"
    await reset_links(client, "known@example.com")
    assert [e.to for e in outbox_of(client.container.settings).entries()] == ["known@example.com"]


async def test_a_newer_request_makes_older_links_stop_working(client: GraphQLClient) -> None:
    await register_user(client, "twice@example.com", PASSWORD)
    await mutate(client, REQUEST, {"email": "twice@example.com"})
    [first] = await reset_links(client, "twice@example.com")
    await mutate(client, REQUEST, {"email": "twice@example.com"})
    [second] = [t for t in await reset_links(client, "twice@example.com", count=2) if t != first]
    assert (await mutate(client, RESET, {"token": first, "new": NEW_PASSWORD}))["__typename"] == "InvalidCredentials"
    assert (await mutate(client, RESET, {"token": second, "new": NEW_PASSWORD}))["__typename"] == "ResetPasswordSuccess"


async def test_an_expired_link_changes_nothing(client: GraphQLClient, postgres_dsn: str) -> None:
    await register_user(client, "late@example.com", PASSWORD)
    await mutate(client, REQUEST, {"email": "late@example.com"})
    [token] = await reset_links(client, "late@example.com")
    conn = await asyncpg.connect(postgres_dsn)
    try:
        await conn.execute("UPDATE password_resets SET expires_at = now() - interval '1 second'")
    finally:
        await conn.close()
    assert (await mutate(client, RESET, {"token": token, "new": NEW_PASSWORD}))["__typename"] == "InvalidCredentials"
    assert (await login(client, "late@example.com", PASSWORD))["__typename"] == "AuthPayload"


async def test_a_bad_new_password_does_not_use_the_link_up(client: GraphQLClient) -> None:
    await register_user(client, "weak@example.com", PASSWORD)
    await mutate(client, REQUEST, {"email": "weak@example.com"})
    [token] = await reset_links(client, "weak@example.com")
    weak = await mutate(client, RESET, {"token": token, "new": "short"})
    assert weak["__typename"] == "InvalidInput" and weak["fields"][0]["field"] == "newPassword"
    assert (await mutate(client, RESET, {"token": token, "new": NEW_PASSWORD}))["__typename"] == "ResetPasswordSuccess"


async def test_of_concurrent_uses_of_one_link_exactly_one_wins(client: GraphQLClient) -> None:
    await register_user(client, "both@example.com", PASSWORD)
    await mutate(client, REQUEST, {"email": "both@example.com"})
    [token] = await reset_links(client, "both@example.com")
    answers = await asyncio.gather(
        *(mutate(client, RESET, {"token": token, "new": f"{NEW_PASSWORD} {n}"}) for n in range(4))
    )
    kinds = sorted(a["__typename"] for a in answers)
    assert kinds == ["InvalidCredentials"] * 3 + ["ResetPasswordSuccess"]
    [winner] = [n for n, a in enumerate(answers) if a["__typename"] == "ResetPasswordSuccess"]
    assert (await login(client, "both@example.com", f"{NEW_PASSWORD} {winner}"))["__typename"] == "AuthPayload"


async def test_reset_requests_are_limited_per_address_and_per_client(app_settings: Callable[..., Any]) -> None:
    async with running_app(app_settings(rate_limit_password_reset_account=2, rate_limit_password_reset=4)) as client:
        kinds = [(await mutate(client, REQUEST, {"email": "Spam@example.com"}))["__typename"] for _ in range(3)]
        assert kinds == ["RequestPasswordResetSuccess"] * 2 + ["RateLimited"]
        # other addresses from the same client until the client's own limit
        kinds = [(await mutate(client, REQUEST, {"email": f"other{n}@example.com"}))["__typename"] for n in range(3)]
        assert kinds == ["RequestPasswordResetSuccess"] * 2 + ["RateLimited"]


async def test_a_malformed_address_is_invalid_input(client: GraphQLClient) -> None:
    answer = await mutate(client, REQUEST, {"email": "not an address"})
    assert answer["__typename"] == "InvalidInput" and answer["fields"][0]["field"] == "email"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(token=st.text(max_size=300), email=st.text(max_size=300))
async def test_hostile_tokens_and_addresses_get_typed_answers(client: GraphQLClient, token: str, email: str) -> None:
    reset = await client.execute(RESET, {"token": token, "new": NEW_PASSWORD}, expect_errors=True)
    request = await client.execute(REQUEST, {"email": email}, expect_errors=True)
    for body, allowed in (
        (reset, {"InvalidCredentials", "InvalidInput", "RateLimited"}),
        (request, {"RequestPasswordResetSuccess", "InvalidInput", "RateLimited"}),
    ):
        assert "INTERNAL_SERVER_ERROR" not in codes(body), body
        if body.get("data"):
            assert next(iter(body["data"].values()))["__typename"] in allowed


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(current=st.text(max_size=300), new=st.text(max_size=300))
async def test_hostile_passwords_to_change_get_typed_answers(
    hostile_client: GraphQLClient, current: str, new: str
) -> None:
    # given a session whose password is never the generated one (so nothing changes, and it stays signed in)
    token = hostile_client.token
    assert token is not None
    body = await hostile_client.execute(CHANGE, {"current": current, "new": new}, token=token, expect_errors=True)
    assert "INTERNAL_SERVER_ERROR" not in codes(body), body
    if body.get("data"):
        answer = body["data"]["changePassword"]["__typename"]
        assert answer in {"InvalidCredentials", "InvalidInput", "RateLimited"}
    else:
        assert codes(body) == {"INVALID_INPUT"}, body  # text no column can hold, refused at the boundary


@pytest.fixture
async def hostile_client(app_settings: Callable[..., Any]) -> AsyncIterator[GraphQLClient]:
    async with running_app(app_settings(rate_limit_login_account=10_000, rate_limit_login=10_000)) as client:
        session = await register_user(client, "hostile@example.com", "the one password nobody guesses")
        yield client.as_user(session["accessToken"])


async def test_a_reset_request_takes_as_long_for_an_unknown_address(app_settings: Callable[..., Any]) -> None:
    # given an account, and limits that do not get in the way
    async with running_app(
        app_settings(rate_limit_password_reset=10_000, rate_limit_password_reset_account=10_000)
    ) as client:
        await register_user(client, "timed@example.com", PASSWORD)

        async def timed(email: str) -> float:
            started = time.perf_counter()
            answer = await mutate(client, REQUEST, {"email": email})
            assert answer["__typename"] == "RequestPasswordResetSuccess"
            return time.perf_counter() - started

        for _ in range(5):  # warm both paths
            await timed("timed@example.com")
            await timed("absent@example.com")
        # when both are asked for in turn, many times
        known, unknown = [], []
        for _ in range(40):
            known.append(await timed("timed@example.com"))
            unknown.append(await timed("absent@example.com"))
        # then the medians are within noise of each other (a loose bound: a shared, busy machine)
        k, u = statistics.median(known), statistics.median(unknown)
        assert abs(k - u) < max(0.005, 0.35 * min(k, u)), (k, u)


async def test_the_reset_mail_travels_over_smtp_and_its_link_works_once(
    app_settings: Callable[..., Any], smtp_server: Callable[..., InProcessSmtp]
) -> None:
    # given the app sending mail to an SMTP server (aiosmtpd in this process)
    smtp = smtp_server("accept")
    mail = {"smtp_host": smtp.host, "smtp_port": smtp.port, "smtp_tls": "none", "mail_from": "noreply@genhub.example"}
    async with running_app(app_settings(**mail)) as client:
        session = await register_user(client, "smtp@example.com", PASSWORD)
        # when a reset is requested
        await mutate(client, REQUEST, {"email": "smtp@example.com"})
        # then the server receives one message with the link
        await eventually(lambda: len(smtp.received) == 1, what="the reset e-mail over SMTP", timeout=10)
        [received] = smtp.received
        assert received.rcpt_tos == ["smtp@example.com"]
        body = received.parsed.get_body(preferencelist=("plain",))
        assert body is not None
        [token] = LINK.findall(body.get_content())
        # when the link's token is used, then it works once
        assert (await mutate(client, RESET, {"token": token, "new": NEW_PASSWORD}))["__typename"] == (
            "ResetPasswordSuccess"
        )
        assert (await mutate(client, RESET, {"token": token, "new": NEW_PASSWORD}))["__typename"] == (
            "InvalidCredentials"
        )
        assert not await admitted(client, session["accessToken"])
        assert (await login(client, "smtp@example.com", NEW_PASSWORD))["__typename"] == "AuthPayload"
