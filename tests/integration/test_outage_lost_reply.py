"""A write whose reply is lost (the proxy in front of PostgreSQL drops the server's answer and breaks
the connection): the start is found by its id, or the answer says its outcome is unknown; the
ledger holds exactly one reservation either way."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text

from domain.credits import CreditBalance, LedgerEntry, LedgerKind
from domain.errors import OutcomeUnknown, ServiceUnavailable
from tests.fixtures.app import (
    GraphQLClient,
    SettingsFactory,
    operator_grant,
    operator_model,
    register_user,
    running_app,
)
from tests.fixtures.tcp_proxy import TcpProxy, tcp_proxy
from tests.integration.test_outage_postgres import through

pytestmark = pytest.mark.postgres

T = TypeVar("T")
READ_TRIES = 5

GENERATE = """
mutation Generate($input: GenerateInput!) {
  generate(input: $input) { __typename ... on GenerateSuccess { generation { id status } } ... on Error { code } }
}
"""


@pytest.fixture
async def proxy(clean_postgres: str) -> AsyncIterator[TcpProxy]:
    parts = urlsplit(clean_postgres)
    async with tcp_proxy(parts.hostname or "127.0.0.1", parts.port or 5432) as p:
        yield p


@pytest.fixture
async def client(clean_postgres: str, proxy: TcpProxy, make_settings: SettingsFactory) -> AsyncIterator[GraphQLClient]:
    settings = make_settings(database_url=through(clean_postgres, proxy.port), simulated_mode="hang")
    async with running_app(settings) as c:
        yield c


async def a_user_with_credits(client: GraphQLClient) -> tuple[GraphQLClient, uuid.UUID, str]:
    user = await register_user(client, f"lost-{uuid.uuid4().hex[:8]}@example.com")
    await operator_grant(client, user["user"]["id"], 100)
    model_id = await operator_model(client, cost=10)
    return client.as_user(user["accessToken"]), uuid.UUID(user["user"]["id"]), model_id


async def settled(read: Callable[[], Awaitable[T]]) -> T:
    """`read()` once PostgreSQL answers again: a pooled connection the proxy broke fails once."""
    for _ in range(READ_TRIES):
        try:
            return await read()
        except ServiceUnavailable:
            await asyncio.sleep(0.1)
    return await read()


async def reservations(client: GraphQLClient, user_id: uuid.UUID) -> tuple[list[str], int, bool]:
    return await settled(lambda: _reservations(client, user_id))


async def _reservations(client: GraphQLClient, user_id: uuid.UUID) -> tuple[list[str], int, bool]:
    """The prompts of the user's generations, the number of RESERVE rows, and whether the account
    equals the sums of its ledger."""
    async with client.container.uow() as uow:
        account = await uow.credits.balance(user_id)
        totals = await uow.credits.ledger_totals(user_id)
        reserves = await uow.session.scalar(
            text("SELECT count(*) FROM credit_ledger WHERE user_id = :u AND kind = 'reserve'"), {"u": user_id}
        )
        prompts = await uow.session.execute(
            text("SELECT prompt FROM generations WHERE user_id = :u ORDER BY created_at"), {"u": user_id}
        )
    return [p for (p,) in prompts.all()], int(reserves or 0), account == totals


async def test_a_start_whose_reply_is_lost_is_found_and_answered_as_started(
    client: GraphQLClient, proxy: TcpProxy
) -> None:
    # given a user with credits, and a proxy that drops the answer to the start of one prompt
    me, user_id, model_id = await a_user_with_credits(client)
    proxy.lose_reply_to(b"lost reply, found [hang]")
    # when that generate runs (no idempotencyKey)
    body = await me.execute(GENERATE, {"input": {"modelId": model_id, "prompt": "lost reply, found [hang]"}})
    # then the start ran, its reply was lost, and the answer is the generation it stored
    assert proxy.reply_lost.is_set()
    answer = body["data"]["generate"]
    assert answer["__typename"] == "GenerateSuccess", body
    assert answer["generation"]["status"] == "QUEUED"
    # and the ledger holds one reservation, for that one generation
    assert await reservations(client, user_id) == (["lost reply, found [hang]"], 1, True)


async def test_a_start_whose_outcome_cannot_be_found_out_says_so(client: GraphQLClient, proxy: TcpProxy) -> None:
    # given a user with credits, and PostgreSQL unreachable right after the start of one prompt is sent
    me, user_id, model_id = await a_user_with_credits(client)
    proxy.lose_reply_to(b"lost reply, unknown [hang]", then_refuse=True)
    try:
        # when that generate runs
        response = await me.http.post(
            "/graphql",
            json={
                "query": GENERATE,
                "variables": {"input": {"modelId": model_id, "prompt": "lost reply, unknown [hang]"}},
            },
            headers={"Authorization": f"Bearer {me.token}"},
        )
    finally:
        await proxy.restore()
    # then the answer says the service was unavailable and the outcome is unknown (not "nothing was done")
    assert proxy.reply_lost.is_set()
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert error["extensions"]["outcome"] == "UNKNOWN"
    assert response.headers["retry-after"] == str(error["extensions"]["retryAfter"])
    # and the start had been stored: one generation, one reservation, the account equal to its ledger
    assert await reservations(client, user_id) == (["lost reply, unknown [hang]"], 1, True)


async def test_a_commit_whose_reply_is_lost_is_an_unknown_outcome(client: GraphQLClient, proxy: TcpProxy) -> None:
    # given a user's account, and PostgreSQL unreachable right after a COMMIT is sent
    user = await register_user(client, f"commit-{uuid.uuid4().hex[:8]}@example.com")
    await operator_grant(client, user["user"]["id"], 100)
    user_id = uuid.UUID(user["user"]["id"])
    grant = LedgerEntry(
        id=uuid.uuid4(),
        user_id=user_id,
        kind=LedgerKind.GRANT,
        amount=7,
        idempotency_key=f"lost-commit-{uuid.uuid4()}",
        created_at=client.container.clock.now(),
    )
    with pytest.raises(OutcomeUnknown):
        async with client.container.uow() as uow:
            await uow.credits.add_entry(grant)
            await uow.credits.change(user_id, balance_delta=7, reserved_delta=0)
            proxy.lose_reply_to(b"COMMIT;", then_refuse=True)
            await uow.commit()
    await proxy.restore()
    # then it was committed although the caller could not know: the grant is there once
    assert proxy.reply_lost.is_set()

    async def account() -> tuple[CreditBalance, CreditBalance]:
        async with client.container.uow() as uow:
            return await uow.credits.balance(user_id), await uow.credits.ledger_totals(user_id)

    balance, totals = await settled(account)
    assert balance.balance == 107 and balance == totals
