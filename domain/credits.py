"""Credit rules: an account holds a posted balance and reserved credits.

Every move is one immutable ledger entry. Sign convention of `amount`:

* grant (+), adjust (+/-), capture (-) change the posted balance;
* reserve (+), release (-), capture (-) change the reserved amount.

So at any time ``balance == sum(amount of grant, adjust, capture)`` and
``reserved == sum(amount of reserve, release, capture)``, and
``available = balance - reserved`` is never negative. No move may take the balance
above ``MAX_BALANCE``: the API serialises balances as GraphQL ``Int`` (32-bit).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from domain.errors import InsufficientCredits, InvalidInput, InvalidState


class LedgerKind(enum.StrEnum):
    GRANT = "grant"
    RESERVE = "reserve"
    CAPTURE = "capture"
    RELEASE = "release"
    ADJUST = "adjust"


BALANCE_KINDS = frozenset({LedgerKind.GRANT, LedgerKind.ADJUST, LedgerKind.CAPTURE})
RESERVED_KINDS = frozenset({LedgerKind.RESERVE, LedgerKind.RELEASE, LedgerKind.CAPTURE})
MAX_GRANT = 10_000_000
MAX_BALANCE = 2_147_483_647  # GraphQL Int is 32-bit: `credits { balance }` must stay serialisable


@dataclass(frozen=True, slots=True)
class CreditBalance:
    balance: int
    reserved: int

    @property
    def available(self) -> int:
        return self.balance - self.reserved


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    id: uuid.UUID
    user_id: uuid.UUID
    kind: LedgerKind
    amount: int
    idempotency_key: str
    created_at: datetime
    generation_id: uuid.UUID | None = None
    reason: str | None = None
    actor_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class Move:
    """A ledger move before it is stored: what changes and by how much."""

    kind: LedgerKind
    amount: int
    balance_delta: int
    reserved_delta: int


def check_cap(account: CreditBalance, move: Move) -> None:
    """Refuse a move that would raise the balance above MAX_BALANCE (lowering it is always allowed)."""
    if move.balance_delta > 0 and account.balance + move.balance_delta > MAX_BALANCE:
        room = max(0, MAX_BALANCE - account.balance)
        raise InvalidInput.single(
            "amount", f"would exceed the maximum balance of {MAX_BALANCE} credits (at most {room} more can be added)"
        )


def grant(amount: int) -> Move:
    """A grant whose room under MAX_BALANCE the store checks atomically (see CreditRepository.change)."""
    if amount <= 0 or amount > MAX_GRANT:
        raise InvalidInput.single("amount", f"must be between 1 and {MAX_GRANT}")
    return Move(LedgerKind.GRANT, amount, amount, 0)


def adjust(account: CreditBalance, amount: int) -> Move:
    if amount == 0:
        raise InvalidInput.single("amount", "must not be zero")
    if account.available + amount < 0:
        raise InsufficientCredits(required=-amount, available=account.available)
    move = Move(LedgerKind.ADJUST, amount, amount, 0)
    check_cap(account, move)
    return move


def hold(amount: int) -> Move:
    """A reservation whose cover the store checks atomically (see CreditRepository.change)."""
    if amount < 0:
        raise InvalidInput.single("amount", "must not be negative")
    return Move(LedgerKind.RESERVE, amount, 0, amount)


def reserve(account: CreditBalance, amount: int) -> Move:
    move = hold(amount)
    if account.available < amount:
        raise InsufficientCredits(required=amount, available=max(0, account.available))
    return move


def settle(reserved_for_job: int, actual_cost: int) -> tuple[Move, Move | None]:
    """Capture the actual cost of a finished job and release what is left of its hold."""
    if actual_cost < 0 or actual_cost > reserved_for_job:
        raise InvalidState(f"Cannot capture {actual_cost} of a {reserved_for_job} reservation.")
    capture = Move(LedgerKind.CAPTURE, -actual_cost, -actual_cost, -actual_cost)
    rest = reserved_for_job - actual_cost
    return capture, (Move(LedgerKind.RELEASE, -rest, 0, -rest) if rest else None)


def release(reserved_for_job: int) -> Move:
    if reserved_for_job < 0:
        raise InvalidState("A reservation cannot be negative.")
    return Move(LedgerKind.RELEASE, -reserved_for_job, 0, -reserved_for_job)


def apply(account: CreditBalance, move: Move) -> CreditBalance:
    check_cap(account, move)
    after = CreditBalance(account.balance + move.balance_delta, account.reserved + move.reserved_delta)
    if after.reserved < 0 or after.available < 0:
        raise InvalidState("A ledger move would break the account invariants.")
    return after


def totals(entries: Iterable[tuple[LedgerKind, int]]) -> CreditBalance:
    """Recompute balance and reserved from ledger entries (the invariant check)."""
    balance = reserved = 0
    for kind, amount in entries:
        if kind in BALANCE_KINDS:
            balance += amount
        if kind in RESERVED_KINDS:
            reserved += amount
    return CreditBalance(balance, reserved)


def generation_key(generation_id: uuid.UUID, kind: LedgerKind) -> str:
    """The idempotency key of a generation's move: one of each kind per generation."""
    return f"gen:{generation_id}:{kind.value}"


def grant_key(user_id: uuid.UUID, client_key: str | None) -> str:
    return f"grant:{user_id}:{client_key or uuid.uuid4()}"
