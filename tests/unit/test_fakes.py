"""The shared fakes keep the promises the use cases rely on: a unit of work rolls back unless committed."""

from __future__ import annotations

import uuid

import pytest

from domain.credits import CreditBalance, LedgerEntry, LedgerKind
from tests.unit.fakes import T0, Fakes, FakeUnitOfWork


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


def grant_entry(user_id: uuid.UUID, key: str, amount: int = 5) -> LedgerEntry:
    return LedgerEntry(uuid.uuid4(), user_id, LedgerKind.GRANT, amount, key, T0)


async def test_leaving_a_unit_of_work_without_commit_discards_its_writes(fakes: Fakes) -> None:
    # given an account
    user = fakes.user(balance=0)
    # when a transaction writes a ledger row and moves the account, then fails before commit
    with pytest.raises(RuntimeError, match="boom"):
        async with fakes.uow as uow:
            assert await uow.credits.add_entry(grant_entry(user.id, "k"))
            assert await uow.credits.change(user.id, balance_delta=5, reserved_delta=0) == CreditBalance(5, 0)
            raise RuntimeError("boom")
    # then nothing of it is stored
    assert fakes.db.accounts[user.id] == CreditBalance(0, 0)
    assert "k" not in fakes.db.ledger


async def test_a_transaction_reads_its_own_writes_and_commit_applies_them(fakes: Fakes) -> None:
    user = fakes.user(balance=0)
    async with fakes.uow as uow:
        await uow.credits.add_entry(grant_entry(user.id, "k"))
        await uow.credits.change(user.id, balance_delta=5, reserved_delta=0)
        assert await uow.credits.balance(user.id) == CreditBalance(5, 0)
        # another unit of work sees only what is committed
        async with FakeUnitOfWork(fakes.db) as other:
            assert await other.credits.balance(user.id) == CreditBalance(0, 0)
        await uow.commit()
    assert fakes.db.accounts[user.id] == CreditBalance(5, 0) and "k" in fakes.db.ledger


async def test_writes_after_a_commit_are_rolled_back_on_exit(fakes: Fakes) -> None:
    user = fakes.user(balance=0)
    async with fakes.uow as uow:
        await uow.credits.change(user.id, balance_delta=5, reserved_delta=0)
        await uow.commit()
        await uow.credits.change(user.id, balance_delta=7, reserved_delta=0)
    assert fakes.db.accounts[user.id] == CreditBalance(5, 0)


async def test_repositories_refuse_to_work_outside_a_transaction(fakes: Fakes) -> None:
    with pytest.raises(RuntimeError, match="not open"):
        await fakes.uow.users.get(uuid.uuid4())


async def test_a_failed_commit_stores_nothing(fakes: Fakes) -> None:
    user = fakes.user(balance=0)
    fakes.db.fail_next_commit = ConnectionError("lost")
    with pytest.raises(ConnectionError):
        async with fakes.uow as uow:
            await uow.credits.change(user.id, balance_delta=5, reserved_delta=0)
            await uow.commit()
    assert fakes.db.accounts[user.id] == CreditBalance(0, 0)
