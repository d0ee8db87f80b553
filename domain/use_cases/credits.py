"""Credit moves as use cases: each writes one ledger row and changes the account in one transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from domain import credits as rules
from domain.audit import Attempt, AuditAction, AuditOutcome, RequestOrigin
from domain.credits import CreditBalance, LedgerEntry, LedgerKind
from domain.errors import DomainError, Forbidden, InsufficientCredits, InvalidInput, InvalidState, NotFound
from domain.events import CreditsChanged
from domain.pagination import Page, PageRequest
from domain.ports import Clock, EventPublisher
from domain.repositories import UnitOfWork
from domain.use_cases.audit import record_refusal
from domain.users import Principal

MAX_REASON_LENGTH = 500


@dataclass(frozen=True, slots=True)
class GrantResult:
    balance: CreditBalance
    entry: LedgerEntry
    replayed: bool


async def post_move(
    uow: UnitOfWork,
    *,
    user_id: uuid.UUID,
    move: rules.Move,
    key: str,
    at: datetime,
    generation_id: uuid.UUID | None = None,
    reason: str | None = None,
    actor_id: uuid.UUID | None = None,
) -> CreditBalance | None:
    """Write the ledger row, then apply it to the account; None when the key was already used."""
    entry = LedgerEntry(
        id=uuid.uuid4(),
        user_id=user_id,
        kind=move.kind,
        amount=move.amount,
        idempotency_key=key,
        created_at=at,
        generation_id=generation_id,
        reason=reason,
        actor_id=actor_id,
    )
    if not await uow.credits.add_entry(entry):
        return None
    after = await uow.credits.change(user_id, balance_delta=move.balance_delta, reserved_delta=move.reserved_delta)
    if after is None:
        # The store refused the move atomically (the caller's `async with uow` rolls the ledger row
        # back): say why from the account as it is now, which includes any concurrent move.
        current = await uow.credits.balance(user_id)
        rules.check_cap(current, move)
        if move.kind in (LedgerKind.RESERVE, LedgerKind.ADJUST):
            raise InsufficientCredits(required=abs(move.amount), available=max(0, current.available))
        raise InvalidState(f"The credit account cannot take a {move.kind.value} of {move.amount}.")
    return after


async def grant(
    *,
    actor: Principal | None,
    user_id: uuid.UUID,
    amount: int,
    reason: str,
    idempotency_key: str | None,
    uow: UnitOfWork,
    publisher: EventPublisher,
    clock: Clock,
    kind: LedgerKind = LedgerKind.GRANT,
    origin: RequestOrigin = RequestOrigin(),
) -> GrantResult:
    """Admins grant through the API; `actor=None` is the trusted operator (CLI, seeding).

    Audited: the entry is written with the ledger row; a refusal is recorded on its own.
    """
    if actor is not None and not actor.is_admin:
        raise Forbidden("Only administrators can grant credits.")
    now = clock.now()
    asked = {"amount": amount, "kind": kind.value, "reason": reason, "idempotencyKey": idempotency_key}
    attempt = Attempt(AuditAction.GRANT_CREDITS, actor, now, str(user_id), user_id, origin, asked)
    try:
        result = await _grant(
            attempt, user_id=user_id, amount=amount, reason=reason, idempotency_key=idempotency_key, kind=kind, uow=uow
        )
    except DomainError as exc:
        await record_refusal(uow, attempt, exc)
        raise
    await publisher.publish(CreditsChanged(user_id, result.balance.balance, result.balance.reserved, now))
    return result


async def _grant(
    attempt: Attempt,
    *,
    user_id: uuid.UUID,
    amount: int,
    reason: str,
    idempotency_key: str | None,
    kind: LedgerKind,
    uow: UnitOfWork,
) -> GrantResult:
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON_LENGTH:
        raise InvalidInput.single("reason", f"must be 1-{MAX_REASON_LENGTH} characters")
    if idempotency_key is not None and not (0 < len(idempotency_key) <= 128):
        raise InvalidInput.single("idempotencyKey", "must be 1-128 characters")
    key = rules.grant_key(user_id, idempotency_key)
    now = attempt.at
    async with uow:
        if await uow.users.get(user_id) is None:
            raise NotFound("user")
        await uow.credits.ensure_account(user_id)
        if kind is LedgerKind.ADJUST:
            move = rules.adjust(await uow.credits.balance(user_id), amount)
        else:
            move = rules.grant(amount)
        actor_id = attempt.actor.user_id if attempt.actor else None
        after = await post_move(uow, user_id=user_id, move=move, key=key, at=now, reason=reason, actor_id=actor_id)
        replayed = after is None  # the key's move was posted before: this call posted nothing
        entry = await uow.credits.entry_by_key(key)
        assert entry is not None
        if after is None:
            if entry.user_id != user_id or entry.amount != move.amount:
                raise InvalidInput.single("idempotencyKey", "was already used for a different grant")
            after = await uow.credits.balance(user_id)
        outcome = AuditOutcome.UNCHANGED if replayed else AuditOutcome.APPLIED
        await uow.audit.add(attempt.entry(outcome, {"ledgerEntryId": str(entry.id), "balance": after.balance}))
        await uow.commit()
    return GrantResult(after, entry, replayed=replayed)


async def balance_of(*, user_id: uuid.UUID, uow: UnitOfWork) -> CreditBalance:
    async with uow:
        return await uow.credits.balance(user_id)


async def ledger(*, user_id: uuid.UUID, page: PageRequest, uow: UnitOfWork) -> Page[LedgerEntry]:
    async with uow:
        return await uow.credits.ledger_page(user_id, page)
