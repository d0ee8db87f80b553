"""Credit moves counted when their ledger row's transaction commits (the series are in `infrastructure.metrics`).

Importing this module hooks the counting into every SQLAlchemy `Session`'s commit and rollback.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from infrastructure.metrics import CREDIT_MOVES, CREDITS_MOVED

LEDGER_MOVES = "genhub.ledger_moves"


def note_ledger_move(session: Any, kind: str, amount: int) -> None:
    """Called by the credit repository for each inserted ledger row; counted only if it commits."""
    session.info.setdefault(LEDGER_MOVES, []).append((kind, abs(amount)))


@functools.lru_cache(maxsize=16)
def _ledger_children(kind: str) -> tuple[Any, Any]:
    return CREDIT_MOVES.labels(kind), CREDITS_MOVED.labels(kind)


def count_ledger_move(kind: str, amount: int) -> None:
    """One committed ledger row (writers outside an ORM session call this themselves)."""
    moves, credits = _ledger_children(kind)
    moves.inc()
    credits.inc(abs(amount))


def _count_committed(session: Session) -> None:
    for kind, amount in session.info.pop(LEDGER_MOVES, ()):
        count_ledger_move(kind, amount)


def _forget_rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    if not previous_transaction.nested:
        session.info.pop(LEDGER_MOVES, None)


if not event.contains(Session, "after_commit", _count_committed):
    event.listen(Session, "after_commit", _count_committed)
    event.listen(Session, "after_soft_rollback", _forget_rolled_back)
