"""deleteAccount across replicas (two apps on one PostgreSQL and Redis): the other replica refuses the
deleted account's token at once and closes its open subscription."""

from __future__ import annotations

import time

import pytest

from tests.fixtures.app import GraphQLClient
from tests.integration.test_access_gate import PASSWORD, closed_with, me, pair, signed_in, subscribed

pytestmark = pytest.mark.postgres

__all__ = ["pair"]  # the fixture, shared with the access gate's tests

DELETE_ACCOUNT = """
mutation D($password: String!) { deleteAccount(input: {password: $password}) { __typename } }
"""


async def test_deleting_an_account_on_one_replica_closes_its_subscription_on_the_other(
    pair: tuple[GraphQLClient, GraphQLClient],
) -> None:
    # given a user subscribed on replica A, and a bystander subscribed there too
    a, b = pair
    _, token, _ = await signed_in(a, "leaving@example.com")
    _, bystander, _ = await signed_in(a, "staying@example.com")
    async with subscribed(a, token) as ws, subscribed(a, bystander) as other:
        # when the user deletes the account through replica B
        started = time.monotonic()
        body = await b.execute(DELETE_ACCOUNT, {"password": PASSWORD}, token=token)
        assert body["data"]["deleteAccount"]["__typename"] == "DeleteAccountSuccess"
        # then A closes the user's connection within about a second, not the bystander's
        assert await closed_with(ws, timeout=1.5) == 4401
        assert time.monotonic() - started < 1.5
        with pytest.raises(TimeoutError):
            await other.receive_json(timeout=0.3)
    # and both replicas refuse the token from then on
    assert await me(a, token) == {"UNAUTHENTICATED"}
    assert await me(b, token) == {"UNAUTHENTICATED"}
    assert await me(a, bystander) == set()
