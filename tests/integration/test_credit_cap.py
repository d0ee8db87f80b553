"""The balance cap on PostgreSQL: no grant, alone or concurrent, takes a balance past GraphQL's 32-bit Int."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from domain.credits import MAX_BALANCE, LedgerKind
from domain.pagination import PageRequest
from entrypoints import cli
from tests.fixtures.app import GraphQLClient, SettingsFactory, admin_token, register_user, running_app
from tests.fixtures.credits import grant_credits

pytestmark = pytest.mark.postgres

GRANT = """
mutation Grant($input: GrantCreditsInput!) {
  grantCredits(input: $input) {
    __typename
    ... on GrantCreditsSuccess { balance { balance reserved available } }
    ... on InvalidInput { fields { field message } }
    ... on Error { code message }
  }
}
"""
CREDITS = "query Credits { credits { balance reserved available } }"


@pytest.fixture
async def client(clean_postgres: str, make_settings: SettingsFactory) -> AsyncIterator[GraphQLClient]:
    async with running_app(make_settings(database_url=clean_postgres)) as c:
        yield c


async def near_the_cap(client: GraphQLClient, user_id: str, room: int) -> None:
    """An operator adjustment that leaves `room` credits below the maximum balance."""
    await grant_credits(
        client.container, uuid.UUID(user_id), MAX_BALANCE - room, reason="years of top-ups", kind=LedgerKind.ADJUST
    )


async def ledger_rows(client: GraphQLClient, user_id: str) -> int:
    async with client.container.uow() as uow:
        return len((await uow.credits.ledger_page(uuid.UUID(user_id), PageRequest(100))).items)


def grant_input(user_id: str, amount: int) -> dict[str, object]:
    return {"input": {"userId": user_id, "amount": amount, "reason": "bonus"}}


async def test_a_grant_past_the_maximum_balance_is_refused_and_writes_nothing(client: GraphQLClient) -> None:
    # given a user 100 credits below the maximum balance
    admin = client.as_user(await admin_token(client))
    user = await register_user(client, "rich@example.com")
    user_id = user["user"]["id"]
    await near_the_cap(client, user_id, room=100)
    # when an admin grants 101
    refused = (await admin.execute(GRANT, grant_input(user_id, 101)))["data"]["grantCredits"]
    # then the grant is refused on `amount`, naming the maximum balance
    assert refused["__typename"] == "InvalidInput"
    [problem] = refused["fields"]
    assert problem["field"] == "amount" and f"maximum balance of {MAX_BALANCE}" in problem["message"]
    # and nothing was written: the balance still serialises and the ledger has only the adjustment
    me = client.as_user(user["accessToken"])
    expected = {"balance": MAX_BALANCE - 100, "reserved": 0, "available": MAX_BALANCE - 100}
    assert (await me.execute(CREDITS))["data"]["credits"] == expected
    assert await ledger_rows(client, user_id) == 1
    # when the admin grants exactly the room left, then the balance reaches the maximum
    taken = (await admin.execute(GRANT, grant_input(user_id, 100)))["data"]["grantCredits"]
    assert taken["balance"] == {"balance": MAX_BALANCE, "reserved": 0, "available": MAX_BALANCE}
    assert (await me.execute(CREDITS))["data"]["credits"]["balance"] == MAX_BALANCE


async def test_concurrent_grants_cannot_pass_the_maximum_together(client: GraphQLClient) -> None:
    # given a user with room for one grant of 100 but not two
    admin = client.as_user(await admin_token(client))
    user = await register_user(client, "race@example.com")
    user_id = user["user"]["id"]
    await near_the_cap(client, user_id, room=150)
    # when 20 grants of 100 race
    results = await asyncio.gather(*[admin.execute(GRANT, grant_input(user_id, 100)) for _ in range(20)])
    kinds = [r["data"]["grantCredits"]["__typename"] for r in results]
    # then exactly one is taken and the others are refused on `amount`
    assert kinds.count("GrantCreditsSuccess") == 1
    assert kinds.count("InvalidInput") == 19
    # and the account matches its ledger, below the maximum
    async with client.container.uow() as uow:
        account = await uow.credits.balance(uuid.UUID(user_id))
        totals = await uow.credits.ledger_totals(uuid.UUID(user_id))
    assert account == totals
    assert account.balance == MAX_BALANCE - 50
    assert await ledger_rows(client, user_id) == 2


async def test_the_cli_prints_the_cap_error_instead_of_a_traceback(
    client: GraphQLClient, clean_postgres: str, make_settings: SettingsFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a user 5 credits below the maximum balance
    user = await register_user(client, "cli@example.com")
    await near_the_cap(client, user["user"]["id"], room=5)
    # when the operator runs `genhub grant-credits --amount 10`
    code = await cli._grant(make_settings(database_url=clean_postgres), "cli@example.com", 10, "top-up", None)
    # then it exits 2 with one readable line
    assert code == 2
    out = capsys.readouterr().out
    assert out.startswith("error: amount: would exceed the maximum balance") and "Traceback" not in out
