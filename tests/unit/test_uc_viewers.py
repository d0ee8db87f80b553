"""KnownAccounts (domain/use_cases/viewers.py) with in-memory fakes: a token's account is confirmed, and remembered briefly."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from domain.use_cases.viewers import KnownAccounts
from tests.unit.fakes import Fakes

TTL = 30.0


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


async def test_an_existing_account_is_confirmed_and_remembered_for_the_ttl(fakes: Fakes) -> None:
    # given a confirmed account that is then removed from the database
    known = KnownAccounts(ttl_seconds=TTL)
    user = fakes.user()
    assert await known.exists(user.id, uow=fakes.uow, now=0.0)
    del fakes.db.users[user.id]
    # then within the TTL the memo answers, and after it the database does
    assert await known.exists(user.id, uow=fakes.uow, now=TTL - 0.1)
    assert not await known.exists(user.id, uow=fakes.uow, now=TTL)


async def test_an_unknown_account_is_never_remembered(fakes: Fakes) -> None:
    known = KnownAccounts(ttl_seconds=TTL)
    missing = uuid.uuid4()
    assert not await known.exists(missing, uow=fakes.uow, now=0.0)
    fakes.db.users[missing] = dataclasses.replace(fakes.user(), id=missing)  # created since
    assert await known.exists(missing, uow=fakes.uow, now=0.1)


async def test_forget_makes_the_next_check_read_again(fakes: Fakes) -> None:
    known = KnownAccounts(ttl_seconds=TTL)
    user = fakes.user()
    await known.exists(user.id, uow=fakes.uow, now=0.0)
    del fakes.db.users[user.id]
    known.forget(user.id)
    assert not await known.exists(user.id, uow=fakes.uow, now=0.1)


async def test_the_memo_keeps_the_most_recently_confirmed_accounts(fakes: Fakes) -> None:
    # given a memo of two entries and three accounts confirmed in turn
    known = KnownAccounts(ttl_seconds=TTL, max_entries=2)
    first, second, third = fakes.user(), fakes.user(), fakes.user()
    for n, user in enumerate((first, second, first, third)):
        await known.exists(user.id, uow=fakes.uow, now=float(n))
    # when all three are removed, then only the two most recently confirmed are still answered from memory
    # (a memo hit reads nothing, so it confirms nothing: `first` stays the oldest confirmation)
    for user in (first, second, third):
        del fakes.db.users[user.id]
    answers = [await known.exists(u.id, uow=fakes.uow, now=4.0) for u in (first, second, third)]
    assert answers == [False, True, True]
