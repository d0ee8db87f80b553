"""Administration use cases with fakes: suspension rules, what each call records, the admins-only reads."""

from __future__ import annotations

import uuid

import pytest

from domain.audit import MAX_DETAIL_LENGTH, OPERATOR, Attempt, AuditAction, AuditFilter, AuditOutcome, RequestOrigin
from domain.errors import Forbidden, InvalidInput, NotFound, ServiceUnavailable
from domain.pagination import PageRequest
from domain.use_cases import admin_users, audit, suspensions
from domain.users import Principal, Role
from tests.unit.fakes import Fakes, principal_of

ORIGIN = RequestOrigin(client_address="198.51.100.7", request_id="req-1")


async def suspend(
    fakes: Fakes, actor: Principal, user_id: uuid.UUID, reason: str = "spam"
) -> suspensions.SuspensionResult:
    return await suspensions.suspend_user(
        actor=actor,
        user_id=user_id,
        reason=reason,
        uow=fakes.uow,
        clock=fakes.clock,
        revocations=fakes.revocations,
        origin=ORIGIN,
    )


async def reinstate(fakes: Fakes, actor: Principal, user_id: uuid.UUID) -> suspensions.SuspensionResult:
    return await suspensions.reinstate_user(
        actor=actor,
        user_id=user_id,
        uow=fakes.uow,
        clock=fakes.clock,
        revocations=fakes.revocations,
        origin=ORIGIN,
    )


async def test_a_suspension_ends_sessions_announces_once_and_is_idempotent() -> None:
    # given an admin and a user
    fakes = Fakes()
    admin, user = principal_of(fakes.user(role=Role.ADMIN)), fakes.user()
    # when the admin suspends the user twice, a minute apart
    first = await suspend(fakes, admin, user.id)
    fakes.clock.advance(60)
    second = await suspend(fakes, admin, user.id, reason="again")
    # then the first changed the account (suspended, sessions ended) and was announced; the second did neither
    assert first.changed and not second.changed
    assert first.user.suspended_at == second.user.suspended_at == fakes.db.users[user.id].suspended_at
    assert fakes.db.users[user.id].session_version == 1
    assert fakes.revocations.announced == [user.id]
    # and each left one entry: applied, then unchanged, with who, whom, why and where from
    applied, unchanged = fakes.db.audit
    assert (applied.outcome, unchanged.outcome) == (AuditOutcome.APPLIED, AuditOutcome.UNCHANGED)
    assert (applied.actor, applied.actor_id, applied.target_user_id) == ("admin", admin.user_id, user.id)
    assert (applied.details, unchanged.details) == ({"reason": "spam"}, {"reason": "again"})
    assert (applied.client_address, applied.request_id) == ("198.51.100.7", "req-1")


async def test_reinstating_lets_the_user_back_and_is_idempotent() -> None:
    fakes = Fakes()
    admin, user = principal_of(fakes.user(role=Role.ADMIN)), fakes.user()
    await suspend(fakes, admin, user.id)
    back = await reinstate(fakes, admin, user.id)
    again = await reinstate(fakes, admin, user.id)
    assert back.changed and back.user.suspended_at is None and not again.changed
    assert fakes.revocations.announced == [user.id, user.id]  # the suspension and the reinstatement
    assert [e.outcome for e in fakes.db.audit] == [AuditOutcome.APPLIED, AuditOutcome.APPLIED, AuditOutcome.UNCHANGED]
    assert fakes.db.audit[1].action is AuditAction.REINSTATE_USER


@pytest.mark.parametrize("reason", ["", "   ", "x" * 501])
async def test_a_reason_is_required_and_bounded_and_the_refusal_is_recorded(reason: str) -> None:
    fakes = Fakes()
    admin, user = principal_of(fakes.user(role=Role.ADMIN)), fakes.user()
    with pytest.raises(InvalidInput):
        await suspend(fakes, admin, user.id, reason=reason)
    assert fakes.db.users[user.id].suspended_at is None and fakes.revocations.announced == []
    [entry] = fakes.db.audit
    assert (entry.outcome, entry.error_code) == (AuditOutcome.REFUSED, "INVALID_INPUT")
    assert len(entry.details["reason"]) <= MAX_DETAIL_LENGTH


async def test_admins_cannot_suspend_themselves_other_admins_or_tombstones() -> None:
    fakes = Fakes()
    admin_user = fakes.user(role=Role.ADMIN)
    admin, other_admin = principal_of(admin_user), fakes.user(role=Role.ADMIN)
    for target, error in ((admin_user.id, Forbidden), (other_admin.id, Forbidden), (uuid.uuid4(), NotFound)):
        with pytest.raises(error):
            await suspend(fakes, admin, target)
    assert [(e.outcome, e.error_code) for e in fakes.db.audit] == [
        (AuditOutcome.REFUSED, "FORBIDDEN"),
        (AuditOutcome.REFUSED, "FORBIDDEN"),
        (AuditOutcome.REFUSED, "NOT_FOUND"),
    ]
    assert fakes.db.users[other_admin.id].suspended_at is None


async def test_a_caller_who_is_not_an_admin_is_refused_and_writes_nothing() -> None:
    fakes = Fakes()
    caller, user = principal_of(fakes.user()), fakes.user()
    with pytest.raises(Forbidden):
        await suspend(fakes, caller, user.id)
    with pytest.raises(Forbidden):
        await reinstate(fakes, caller, user.id)
    for read in (
        admin_users.search_users(actor=caller, email_contains=None, page=PageRequest(5), uow=fakes.uow),
        admin_users.user_summary(actor=caller, user_id=user.id, uow=fakes.uow),
        audit.audit_page(actor=caller, flt=AuditFilter(), page=PageRequest(5), uow=fakes.uow),
    ):
        with pytest.raises(Forbidden):
            await read
    assert fakes.db.audit == [] and fakes.db.commits == 0


async def test_an_outage_is_not_recorded_as_a_refusal() -> None:
    # given a commit that fails because the database went away
    fakes = Fakes()
    admin, user = principal_of(fakes.user(role=Role.ADMIN)), fakes.user()
    fakes.db.fail_next_commit = ServiceUnavailable("database")
    with pytest.raises(ServiceUnavailable):
        await suspend(fakes, admin, user.id)
    # then neither the suspension nor an entry exists: nothing was refused
    assert fakes.db.audit == [] and fakes.db.users[user.id].suspended_at is None


def test_an_entry_clips_what_a_client_chose_and_keeps_numbers() -> None:
    attempt = Attempt(
        AuditAction.SET_ADMIN_SETTING,
        None,
        Fakes().clock.now(),
        "k" * 500,
        origin=RequestOrigin("a" * 500, "r" * 500),
        details={"key": "k" * 500, "valueBytes": 12, "created": True, "nothing": None, "odd": [1, 2]},
    )
    entry = attempt.entry(AuditOutcome.APPLIED)
    assert entry.actor == OPERATOR and entry.actor_id is None
    assert len(entry.target_id or "") == len(entry.client_address or "") == len(entry.request_id or "") == 100
    assert entry.details == {
        "key": "k" * MAX_DETAIL_LENGTH,
        "valueBytes": 12,
        "created": True,
        "nothing": None,
        "odd": "[1, 2]",
    }


async def test_a_search_longer_than_an_address_is_invalid() -> None:
    fakes = Fakes()
    admin = principal_of(fakes.user(role=Role.ADMIN))
    with pytest.raises(InvalidInput):
        await admin_users.search_users(actor=admin, email_contains="a" * 255, page=PageRequest(5), uow=fakes.uow)
