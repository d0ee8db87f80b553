"""seed_demo (domain/use_cases/seeding.py) with in-memory fakes: a first start gets a demo account and models, once."""

from __future__ import annotations

import dataclasses

import pytest

from domain.credits import CreditBalance
from domain.use_cases.seeding import DEMO_MODELS, seed_demo
from domain.users import Role
from tests.unit.fakes import Fakes

EMAIL = "demo@example.com"
PASSWORD = "demo password 123"
DEMO_CREDITS = 500


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


async def seed(fakes: Fakes) -> None:
    await seed_demo(
        email=EMAIL,
        password=PASSWORD,
        credits_amount=DEMO_CREDITS,
        uow=fakes.uow_factory(),
        hasher=fakes.hasher,
        clock=fakes.clock,
        catalogue_cache=fakes.catalogue,
        publisher=fakes.publisher,
    )


async def test_seeding_creates_the_demo_account_with_credits_and_the_demo_models(fakes: Fakes) -> None:
    await seed(fakes)
    [user] = fakes.db.users.values()
    assert (user.email, user.role) == (EMAIL, Role.USER)
    assert fakes.db.accounts[user.id] == CreditBalance(DEMO_CREDITS, 0)
    models = sorted(fakes.db.models.values(), key=lambda m: m.slug)
    assert [m.slug for m in models] == sorted(spec["slug"] for spec in DEMO_MODELS)
    assert {m.provider for m in models} == {"simulated"} and all(m.is_active for m in models)


async def test_seeding_again_changes_nothing_and_keeps_what_an_admin_changed(fakes: Fakes) -> None:
    # given a seeded start where an admin since repriced a demo model
    await seed(fakes)
    repriced = next(iter(fakes.db.models.values()))
    fakes.db.models[repriced.id] = dataclasses.replace(repriced, cost_credits=1)
    users, ledger = dict(fakes.db.users), dict(fakes.db.ledger)
    # when the seed runs again
    fakes.clock.advance(60)
    await seed(fakes)
    # then no user, credit or model was added, and the admin's price stays
    assert fakes.db.users == users and fakes.db.ledger == ledger
    assert len(fakes.db.models) == len(DEMO_MODELS) and fakes.db.models[repriced.id].cost_credits == 1
