"""Credit use cases (domain/use_cases/credits.py) with in-memory fakes, and the ledger invariants over random histories."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from domain.credits import BALANCE_KINDS, MAX_BALANCE, MAX_GRANT, RESERVED_KINDS, CreditBalance, LedgerKind
from domain.errors import DomainError, Forbidden, InsufficientCredits, InvalidInput, NotFound
from domain.events import CreditsChanged
from domain.generations import ACTIVE_STATUSES
from domain.pagination import PageRequest
from domain.ports import ProviderStatus
from domain.use_cases import credits, finalization, generations, submission
from domain.use_cases.credits import GrantResult
from domain.use_cases.generations import GenerateRequest
from domain.users import Principal, Role, User
from tests.unit.fakes import FakeDatabase, Fakes, principal_of
from tests.unit.processing_fakes import Env

REASON = "welcome bonus"
KEY = "grant-1"
AMOUNT = 50


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


async def grant(
    fakes: Fakes,
    actor: Principal | None,
    user_id: uuid.UUID,
    amount: int = AMOUNT,
    *,
    key: str | None = KEY,
    reason: str = REASON,
    kind: LedgerKind = LedgerKind.GRANT,
) -> GrantResult:
    return await credits.grant(
        actor=actor,
        user_id=user_id,
        amount=amount,
        reason=reason,
        idempotency_key=key,
        uow=fakes.uow,
        publisher=fakes.publisher,
        clock=fakes.clock,
        kind=kind,
    )


def admin_of(fakes: Fakes) -> Principal:
    return principal_of(fakes.user(role=Role.ADMIN))


def ledger_of(fakes: Fakes, user: User) -> list[tuple[LedgerKind, int]]:
    return [(e.kind, e.amount) for e in fakes.db.ledger_of(user.id)]


# ------------------------------------------------------------------ grant


async def test_an_admin_grants_credits_with_a_ledger_row_and_an_event(fakes: Fakes) -> None:
    # given an admin and a user with an empty account
    admin, user = admin_of(fakes), fakes.user(balance=0)
    # when the admin grants 50 credits
    result = await grant(fakes, admin, user.id)
    # then the balance rose, one GRANT row records who and why, and the new balance is announced
    assert (result.balance, result.replayed) == (CreditBalance(AMOUNT, 0), False)
    assert fakes.db.accounts[user.id] == CreditBalance(AMOUNT, 0)
    entry = fakes.db.ledger[result.entry.idempotency_key]
    assert (entry.kind, entry.amount, entry.reason, entry.actor_id) == (LedgerKind.GRANT, AMOUNT, REASON, admin.user_id)
    assert fakes.publisher.events == [CreditsChanged(user.id, AMOUNT, 0, fakes.clock.now())]


async def test_a_grant_opens_the_account_of_a_user_who_had_none(fakes: Fakes) -> None:
    user = fakes.user()  # no account row yet
    await grant(fakes, None, user.id)
    assert fakes.db.accounts[user.id] == CreditBalance(AMOUNT, 0)


async def test_only_admins_grant_but_the_operator_may(fakes: Fakes) -> None:
    user = fakes.user(balance=0)
    with pytest.raises(Forbidden):
        await grant(fakes, principal_of(user), user.id)
    assert fakes.db.accounts[user.id] == CreditBalance(0, 0) and fakes.db.ledger_of(user.id) == []
    await grant(fakes, None, user.id)  # actor None: the CLI / seeding
    assert fakes.db.ledger_of(user.id)[0].actor_id is None


async def test_a_grant_to_an_unknown_user_is_not_found(fakes: Fakes) -> None:
    with pytest.raises(NotFound) as missing:
        await grant(fakes, admin_of(fakes), uuid.uuid4())
    assert missing.value.entity == "user" and fakes.db.ledger == {}


@pytest.mark.parametrize("amount", [0, -1, -AMOUNT, MAX_GRANT + 1])
async def test_zero_negative_and_oversized_grants_are_refused(fakes: Fakes, amount: int) -> None:
    user = fakes.user(balance=AMOUNT)
    with pytest.raises(InvalidInput) as invalid:
        await grant(fakes, admin_of(fakes), user.id, amount)
    assert [p.field for p in invalid.value.fields] == ["amount"]
    assert fakes.db.accounts[user.id] == CreditBalance(AMOUNT, 0) and len(fakes.db.ledger_of(user.id)) == 1


@pytest.mark.parametrize(
    ("reason", "key", "field"),
    [
        ("  ", KEY, "reason"),
        ("x" * 501, KEY, "reason"),
        (REASON, "k" * 129, "idempotencyKey"),
        (REASON, "", "idempotencyKey"),
    ],
)
async def test_the_reason_and_key_are_checked(fakes: Fakes, reason: str, key: str, field: str) -> None:
    user = fakes.user(balance=0)
    with pytest.raises(InvalidInput) as invalid:
        await grant(fakes, admin_of(fakes), user.id, key=key, reason=reason)
    assert [p.field for p in invalid.value.fields] == [field] and fakes.db.ledger_of(user.id) == []


async def test_a_grant_past_the_maximum_balance_writes_nothing(fakes: Fakes) -> None:
    # given a balance 10 credits short of the maximum
    user = fakes.user(balance=MAX_BALANCE - 10)
    # when 11 are granted
    with pytest.raises(InvalidInput) as invalid:
        await grant(fakes, admin_of(fakes), user.id, 11)
    # then the error says how much still fits, and the ledger row was rolled back with the account
    assert "at most 10 more" in invalid.value.fields[0].message
    assert fakes.db.accounts[user.id] == CreditBalance(MAX_BALANCE - 10, 0) and len(fakes.db.ledger_of(user.id)) == 1
    # and exactly the room left still fits
    assert (await grant(fakes, admin_of(fakes), user.id, 10)).balance.balance == MAX_BALANCE


async def test_a_retried_grant_is_applied_once_and_reported_as_a_replay(fakes: Fakes) -> None:
    # given a grant made with a key
    admin, user = admin_of(fakes), fakes.user(balance=0)
    first = await grant(fakes, admin, user.id)
    # when the same request comes again later
    fakes.clock.advance(5)
    again = await grant(fakes, admin, user.id)
    # then it is the same entry, the balance moved once
    assert (again.replayed, again.entry.id, again.balance) == (True, first.entry.id, CreditBalance(AMOUNT, 0))
    assert ledger_of(fakes, user) == [(LedgerKind.GRANT, AMOUNT)]


async def test_a_grant_replayed_at_the_same_instant_is_still_reported_as_a_replay(fakes: Fakes) -> None:
    admin, user = admin_of(fakes), fakes.user(balance=0)
    await grant(fakes, admin, user.id)
    again = await grant(fakes, admin, user.id)  # the clock did not move (coarse clocks, fast retries)
    assert again.replayed is True


async def test_a_key_reused_for_another_amount_is_refused(fakes: Fakes) -> None:
    admin, user = admin_of(fakes), fakes.user(balance=0)
    await grant(fakes, admin, user.id)
    with pytest.raises(InvalidInput) as reused:
        await grant(fakes, admin, user.id, AMOUNT + 1)
    assert reused.value.fields[0].field == "idempotencyKey"
    assert fakes.db.accounts[user.id] == CreditBalance(AMOUNT, 0)


async def test_the_same_key_for_two_users_makes_two_grants(fakes: Fakes) -> None:
    admin, alice, bob = admin_of(fakes), fakes.user(balance=0), fakes.user(balance=0)
    await grant(fakes, admin, alice.id)
    await grant(fakes, admin, bob.id)
    assert fakes.db.accounts[alice.id] == fakes.db.accounts[bob.id] == CreditBalance(AMOUNT, 0)


async def test_grants_without_a_key_are_never_merged(fakes: Fakes) -> None:
    admin, user = admin_of(fakes), fakes.user(balance=0)
    await grant(fakes, admin, user.id, key=None)
    await grant(fakes, admin, user.id, key=None)
    assert fakes.db.accounts[user.id] == CreditBalance(2 * AMOUNT, 0)


# ------------------------------------------------------------------ adjust


async def test_an_adjustment_may_lower_the_balance_but_not_below_what_is_held(fakes: Fakes) -> None:
    # given 50 credits, 10 of them held by a running generation
    admin, user = admin_of(fakes), fakes.user(balance=AMOUNT)
    fakes.generation(user, fakes.model(cost=10), next(iter(ACTIVE_STATUSES)))
    # when an admin takes 41 away, then only the 40 available may go
    with pytest.raises(InsufficientCredits) as refused:
        await grant(fakes, admin, user.id, -41, key="adj-1", kind=LedgerKind.ADJUST)
    assert (refused.value.required, refused.value.available) == (41, 40)
    result = await grant(fakes, admin, user.id, -40, key="adj-2", kind=LedgerKind.ADJUST)
    assert result.balance == CreditBalance(10, 10) == fakes.db.accounts[user.id]
    with pytest.raises(InvalidInput):
        await grant(fakes, admin, user.id, 0, key="adj-3", kind=LedgerKind.ADJUST)


# ------------------------------------------------------------------ reads


async def test_balance_and_ledger_read_the_users_own_rows_newest_first(fakes: Fakes) -> None:
    user, other = fakes.user(balance=0), fakes.user(balance=7)
    for n in range(3):
        fakes.clock.advance(1)
        await grant(fakes, None, user.id, n + 1, key=f"k{n}")
    assert await credits.balance_of(user_id=user.id, uow=fakes.uow) == CreditBalance(6, 0)
    first = await credits.ledger(user_id=user.id, page=PageRequest(2), uow=fakes.uow)
    assert [e.amount for e in first.items] == [3, 2] and first.has_next
    assert other.id not in {e.user_id for e in first.items}


# ------------------------------------------------------------------ the invariants, over random histories

DONE = ProviderStatus(state="succeeded", progress=1.0, output_urls=("https://cdn.test/out.png",))
FAILED = ProviderStatus(state="failed", error_code="PROVIDER_FAILED", error_message="no")
COSTS = (0, 7, 30)

generation_index = st.integers(min_value=0, max_value=9)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("grant"), st.integers(min_value=1, max_value=60)),
        st.tuples(st.just("generate"), st.sampled_from(COSTS)),
        st.tuples(st.sampled_from(["cancel", "succeed", "succeed", "fail"]), generation_index),
    ),
    max_size=20,
)


def check_invariants(db: FakeDatabase, user: User, events: list[Any]) -> None:
    account = db.accounts[user.id]
    entries = db.ledger_of(user.id)
    # the account is the sum of its ledger
    assert account.balance == sum(e.amount for e in entries if e.kind in BALANCE_KINDS)
    assert account.reserved == sum(e.amount for e in entries if e.kind in RESERVED_KINDS)
    # what is reserved is exactly what the active generations hold; ended ones hold nothing
    held = {
        g.id: sum(e.amount for e in entries if e.generation_id == g.id and e.kind in RESERVED_KINDS)
        for g in db.generations.values()
    }
    for g in db.generations.values():
        assert held[g.id] == (g.reserved_credits if g.status in ACTIVE_STATUSES else 0)
    assert account.reserved == sum(held.values())
    # never negative, and the balance is what was granted minus what succeeded
    assert 0 <= account.reserved <= account.balance
    granted = sum(e.amount for e in entries if e.kind is LedgerKind.GRANT)
    assert account.balance == granted - sum(g.charged_credits for g in db.generations.values())
    # and a subscriber's last word on the balance is the account as stored
    announced = [CreditBalance(e.balance, e.reserved) for e in events if isinstance(e, CreditsChanged)]
    assert announced[-1:] in ([], [account])


async def apply(env: Env, user: User, models: dict[int, Any], started: list[uuid.UUID], op: tuple[str, int]) -> None:
    fakes, (name, arg) = env.fakes, op
    if name == "grant":
        await credits.grant(
            actor=None,
            user_id=user.id,
            amount=arg,
            reason=REASON,
            idempotency_key=None,
            uow=fakes.uow,
            publisher=fakes.publisher,
            clock=fakes.clock,
        )
    elif name == "generate":
        g = await generations.generate(
            principal=principal_of(user),
            request=GenerateRequest(models[arg].id, "a fox"),
            uow=fakes.uow,
            starter=fakes.starter,
            catalogue=fakes.catalogue,
            jobs=fakes.jobs,
            publisher=fakes.publisher,
            clock=fakes.clock,
        )
        started.append(g.id)
    elif started:
        generation_id = started[arg % len(started)]
        if name == "cancel":
            await generations.cancel(
                principal=principal_of(user),
                generation_id=generation_id,
                uow=fakes.uow,
                jobs=fakes.jobs,
                publisher=fakes.publisher,
                clock=fakes.clock,
            )
        else:
            env.provider.status_of = DONE if name == "succeed" else FAILED
            await submission.submit(generation_id, ports=env.ports, policy=env.policy)
            await finalization.refresh(generation_id, ports=env.ports, policy=env.policy)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=st.integers(min_value=0, max_value=100), ops=operations)
async def test_balance_is_the_ledger_and_reserved_is_what_running_generations_hold(
    start: int, ops: list[tuple[str, int]]
) -> None:
    # given a user with some credits and three models (free, cheap, dear)
    env = Env()
    user = env.fakes.user(balance=start)
    models = {cost: env.fakes.model(cost=cost, providerModel="m1") for cost in COSTS}
    started: list[uuid.UUID] = []
    # when any history of grants, starts, cancels, successes and failures runs through the use cases
    for op in ops:
        with contextlib.suppress(DomainError):  # refused (no credits, already ended): the invariants hold too
            await apply(env, user, models, started, op)
        # then after every step the account agrees with its ledger and its generations
        check_invariants(env.store, user, env.publisher.events)
    event(f"charged: {any(g.charged_credits for g in env.store.generations.values())}")
