"""Property test of the ledger rules: no sequence of moves breaks the invariants."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain import credits as rules
from domain.credits import CreditBalance, LedgerKind
from domain.errors import InsufficientCredits, InvalidInput, InvalidState


@dataclass
class Book:
    """An account plus its ledger, driven only through the domain rules."""

    account: CreditBalance = CreditBalance(0, 0)
    ledger: list[tuple[LedgerKind, int]] = field(default_factory=list)
    holds: dict[int, int] = field(default_factory=dict)

    def post(self, move: rules.Move) -> None:
        self.account = rules.apply(self.account, move)
        self.ledger.append((move.kind, move.amount))


Op = tuple[str, int, int]
ops = st.lists(
    st.tuples(
        st.sampled_from(["grant", "reserve", "capture", "release", "adjust"]), st.integers(-50, 200), st.integers(0, 9)
    ),
    max_size=60,
)


@settings(max_examples=400, deadline=None)
@given(ops)
def test_random_sequences_keep_the_invariants(sequence: list[Op]) -> None:
    book = Book()
    for op, amount, job in sequence:
        try:
            if op == "grant":
                book.post(rules.grant(amount))
            elif op == "adjust":
                book.post(rules.adjust(book.account, amount))
            elif op == "reserve" and job not in book.holds:
                book.post(rules.reserve(book.account, max(amount, 0)))
                book.holds[job] = max(amount, 0)
            elif op == "capture" and job in book.holds:
                capture, rest = rules.settle(book.holds[job], max(amount, 0))
                book.post(capture)
                if rest:
                    book.post(rest)
                del book.holds[job]
            elif op == "release" and job in book.holds:
                book.post(rules.release(book.holds[job]))
                del book.holds[job]
        except (InsufficientCredits, InvalidInput, InvalidState):
            pass  # refused moves change nothing
        # invariants after every step
        assert book.account.available >= 0
        assert book.account.reserved >= 0
        assert rules.totals(book.ledger) == book.account
        assert book.account.reserved == sum(book.holds.values())


def test_capture_more_than_reserved_is_refused() -> None:
    with pytest.raises(InvalidState):
        rules.settle(10, 11)


def test_settle_releases_the_rest() -> None:
    capture, rest = rules.settle(10, 7)
    assert (capture.amount, capture.balance_delta, capture.reserved_delta) == (-7, -7, -7)
    assert rest is not None and (rest.kind, rest.amount, rest.reserved_delta) == (LedgerKind.RELEASE, -3, -3)


def test_reserve_needs_available_credits() -> None:
    with pytest.raises(InsufficientCredits) as caught:
        rules.reserve(CreditBalance(10, 8), 5)
    assert (caught.value.required, caught.value.available) == (5, 2)
