"""PROVIDER_SLOT_LEASE_SECONDS is checked against how often the slot sweep renews the slots of what runs."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from infrastructure.settings import Settings


@pytest.mark.parametrize(
    ("lease", "poll"),
    [(10.0, 4.0), (29.0, 10.0), (20.0, 6.5)],  # under three sweeps (the poll interval rounded up: 7 s for 6.5)
)
def test_a_slot_lease_shorter_than_three_sweeps_is_refused(lease: float, poll: float) -> None:
    with pytest.raises(ValidationError, match="PROVIDER_SLOT_LEASE_SECONDS"):
        Settings(  # type: ignore[call-arg]
            _env_file=None,
            provider_slot_lease_seconds=lease,
            poll_interval_seconds=poll,
            provider_concurrency=["kie=2"],
        )


def test_without_concurrency_limits_no_slot_is_taken_and_the_lease_is_not_checked() -> None:
    # the tests' quiet sweeps (POLL_INTERVAL_SECONDS=3600) with the default lease
    settings = Settings(_env_file=None, poll_interval_seconds=3600.0)  # type: ignore[call-arg]
    assert settings.provider_slot_lease_seconds == 300.0


@pytest.mark.parametrize(("lease", "poll"), [(10.0, 3.0), (30.0, 10.0), (21.0, 6.5), (300.0, 3.0)])
def test_a_slot_lease_of_three_sweeps_or_more_is_accepted(lease: float, poll: float) -> None:
    settings = Settings(_env_file=None, provider_slot_lease_seconds=lease, poll_interval_seconds=poll)  # type: ignore[call-arg]
    assert settings.provider_slot_lease_seconds == lease
