"""The generation state machine rejects illegal transitions; final states never change."""

from __future__ import annotations

import pytest

from domain.errors import InvalidState
from domain.generations import FINAL_STATUSES, GenerationStatus, allowed_sources, can_transition, check_transition

S = GenerationStatus


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.QUEUED, S.SUBMITTING),
        (S.SUBMITTING, S.PROCESSING),
        (S.PROCESSING, S.PROCESSING),
        (S.PROCESSING, S.SUCCEEDED),
        (S.QUEUED, S.CANCELED),
        (S.PROCESSING, S.EXPIRED),
        (S.SUBMITTING, S.FAILED),
    ],
)
def test_lifecycle_steps_are_allowed(current: GenerationStatus, target: GenerationStatus) -> None:
    check_transition(current, target)


@pytest.mark.parametrize("final", sorted(FINAL_STATUSES))
@pytest.mark.parametrize("target", list(S))
def test_a_final_status_never_changes(final: GenerationStatus, target: GenerationStatus) -> None:
    with pytest.raises(InvalidState):
        check_transition(final, target)


def test_success_needs_processing_first() -> None:
    assert not can_transition(S.QUEUED, S.SUCCEEDED)
    assert not can_transition(S.SUBMITTING, S.SUCCEEDED)
    assert allowed_sources(S.SUCCEEDED) == {S.PROCESSING}


def test_cancel_is_possible_from_every_active_status() -> None:
    assert allowed_sources(S.CANCELED) == {S.QUEUED, S.SUBMITTING, S.PROCESSING}
