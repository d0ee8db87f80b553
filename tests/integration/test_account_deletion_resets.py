"""deleteAccount against requestPasswordReset and resetPassword running into it: both lock the user's
row before any password_resets row, as the deletion does, so neither deadlocks with it and nothing of
theirs survives it (real PostgreSQL; the deletion held open after its tombstone by a lock of the test)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text

from infrastructure.bootstrap import Services
from tests.fixtures.waiting import eventually
from tests.integration.board_world import PASSWORD, World, module_world
from tests.integration.test_account_deletion import (
    DELETE_ACCOUNT,
    more_than_one_waiter,
    newcomer,
    scalar,
    waiting_for_a_lock,
)

pytestmark = pytest.mark.postgres

REQUEST = "mutation Request($email: String!) { requestPasswordReset(email: $email) { __typename } }"
RESET = """
mutation Reset($token: String!, $new: String!) {
  resetPassword(input: {token: $token, newPassword: $new}) { __typename }
}
"""
RESETS_OF = "SELECT count(*) FROM password_resets WHERE user_id = :u"


@pytest.fixture(scope="module")
async def world(postgres_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    async with module_world(postgres_dsn, tmp_path_factory.mktemp("resets")) as w:
        yield w


async def request_reset(world: World, email: str) -> dict[str, Any]:
    return await world.client.execute(REQUEST, {"email": email}, expect_errors=True)


async def reset_token(world: World, user: uuid.UUID) -> str:
    """The token of the user's one unused reset, as the worker's e-mail carries it."""
    reset_id = await scalar(world, "SELECT id FROM password_resets WHERE user_id = :u AND used_at IS NULL", u=user)
    services: Services = world.client.app.state.services
    mail = await services.passwords.reset_email(reset_id)
    assert mail is not None
    return mail.text.split("#reset=")[1].split()[0]


async def run_into_a_held_deletion(world: World, me: str, late: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Start deleteAccount, hold it after its tombstone (its refresh tokens are locked here), start `late`,
    wait until both wait for a lock, then let the deletion go on: both answers."""
    user = uuid.UUID(world.user_ids[me])
    async with world.client.container.engine.connect() as holder:
        await holder.execute(text("SELECT id FROM refresh_tokens WHERE user_id = :u FOR SHARE"), {"u": user})
        deleting = asyncio.ensure_future(world.run(me, DELETE_ACCOUNT, {"password": PASSWORD}))
        await eventually(lambda: waiting_for_a_lock(world, "DELETE FROM refresh_tokens"), what="the deletion held")
        running = asyncio.ensure_future(late())
        await eventually(lambda: more_than_one_waiter(world), what="the late request waiting")
        await holder.rollback()  # the deletion goes on to delete the resets, and commits
    deleted, answered = await asyncio.gather(deleting, running)
    return deleted, answered


@pytest.mark.parametrize("earlier_reset", [True, False], ids=["an-unused-reset", "no-reset"])
async def test_a_reset_request_running_into_a_deletion_neither_deadlocks_nor_outlives_it(
    world: World, earlier_reset: bool
) -> None:
    # given an account, with an unused reset or none
    me = await newcomer(world)
    user, email = uuid.UUID(world.user_ids[me]), world.emails[me]
    if earlier_reset:
        assert (await request_reset(world, email))["data"]["requestPasswordReset"]["__typename"] == (
            "RequestPasswordResetSuccess"
        )
    # when a reset is asked for while the account's deletion is past its tombstone, not yet committed
    deleted, requested = await run_into_a_held_deletion(world, me, lambda: request_reset(world, email))
    # then both answer as usual (no deadlock, no internal error), and no reset names the deleted account
    assert deleted["data"]["deleteAccount"]["__typename"] == "DeleteAccountSuccess", deleted
    assert requested.get("errors") is None, requested
    assert requested["data"]["requestPasswordReset"]["__typename"] == "RequestPasswordResetSuccess"
    assert await scalar(world, RESETS_OF, u=user) == 0


async def test_a_reset_running_into_a_deletion_is_refused_without_a_deadlock(world: World) -> None:
    # given an account with a reset link
    me = await newcomer(world)
    user = uuid.UUID(world.user_ids[me])
    await request_reset(world, world.emails[me])
    token = await reset_token(world, user)
    # when the link is used while the account's deletion is past its tombstone, not yet committed
    deleted, reset = await run_into_a_held_deletion(
        world,
        me,
        lambda: world.client.execute(RESET, {"token": token, "new": "a brand new passphrase"}, expect_errors=True),
    )
    # then the deletion succeeds and the link is refused as dead (no deadlock, no internal error)
    assert deleted["data"]["deleteAccount"]["__typename"] == "DeleteAccountSuccess", deleted
    assert reset.get("errors") is None, reset
    assert reset["data"]["resetPassword"]["__typename"] == "InvalidCredentials"
    assert await scalar(world, RESETS_OF, u=user) == 0
    assert await scalar(world, "SELECT password_hash FROM users WHERE id = :u", u=user) == ""
