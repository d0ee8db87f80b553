"""Property test of the ledger rules: no sequence of moves breaks the invariants."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain import credits as rules
from domain.credits import MAX_BALANCE, CreditBalance, LedgerKind
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


# an empty account, or one close enough to the cap that a few moves reach it
starts = st.one_of(st.just(0), st.integers(MAX_BALANCE - 500, MAX_BALANCE))


@settings(max_examples=400, deadline=None)
@given(starts, ops)
def test_random_sequences_keep_the_invariants(start: int, sequence: list[Op]) -> None:
    book = Book()
    if start:
        book.post(rules.adjust(book.account, start))
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
        assert book.account.balance <= MAX_BALANCE
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


def test_a_grant_past_the_maximum_balance_is_refused_on_amount() -> None:
    # given an account 100 credits below the maximum balance
    account = CreditBalance(MAX_BALANCE - 100, 30)
    # when a grant of 101 is applied
    with pytest.raises(InvalidInput) as caught:
        rules.apply(account, rules.grant(101))
    # then it is refused on `amount`, saying the maximum and how much room is left
    [problem] = caught.value.fields
    assert problem.field == "amount"
    assert f"maximum balance of {MAX_BALANCE}" in problem.message and "100 more" in problem.message


def test_a_grant_up_to_the_maximum_balance_is_taken() -> None:
    # given an account 100 credits below the maximum balance
    account = CreditBalance(MAX_BALANCE - 100, 0)
    # when exactly 100 are granted
    after = rules.apply(account, rules.grant(100))
    # then the balance is the maximum
    assert after == CreditBalance(MAX_BALANCE, 0)


def test_an_adjust_past_the_maximum_balance_is_refused() -> None:
    # given an account at the maximum balance
    account = CreditBalance(MAX_BALANCE, 0)
    # when it is adjusted up by one, then the rule refuses on `amount`
    with pytest.raises(InvalidInput) as caught:
        rules.adjust(account, 1)
    assert [p.field for p in caught.value.fields] == ["amount"]


def test_moves_that_lower_the_balance_pass_even_above_the_maximum() -> None:
    # given an account already above the maximum (written before the cap existed) with a hold
    account = CreditBalance(MAX_BALANCE + 50, 10)
    # when the hold is captured and the balance adjusted down
    capture, _ = rules.settle(10, 10)
    after = rules.apply(rules.apply(account, capture), rules.adjust(account, -20))
    # then both are taken: the cap only stops increases
    assert after == CreditBalance(MAX_BALANCE + 20, 0)
