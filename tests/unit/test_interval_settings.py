"""Intervals and timeouts in the settings: a hostile value (infinite, not a number, zero, negative, huge) is a
clean validation error at start-up, never an overflow later or a loop that spins."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from infrastructure.settings import Settings

BOUNDED = {
    "poll_interval_seconds": (0.1, 3600.0),
    "retry_base_seconds": (0.0, 3600.0),
    "retry_max_seconds": (0.0, 86400.0),
    "provider_timeout_seconds": (0.0, 600.0),
    "simulated_step_seconds": (0.0, 600.0),
}


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(BOUNDED))
@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e309", "-5", "1e12"])
def test_a_hostile_interval_is_refused(name: str, value: str) -> None:
    with pytest.raises(ValidationError, match=name):
        settings(**{name: value})


def test_a_zero_poll_interval_is_refused_and_sensible_ones_accepted() -> None:
    with pytest.raises(ValidationError, match="poll_interval_seconds"):
        settings(poll_interval_seconds=0)
    assert settings(poll_interval_seconds="0.2").poll_interval_seconds == 0.2


@given(
    st.sampled_from(sorted(BOUNDED)),
    st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=12),
        st.sampled_from(["inf", "Infinity", "NaN", "-0", "1e400"]),
    ),
)
def test_any_value_is_accepted_within_bounds_or_refused_cleanly(name: str, value: object) -> None:
    low, high = BOUNDED[name]
    try:
        got = getattr(settings(**{name: value}), name)
    except ValidationError:
        return
    assert math.isfinite(got) and low <= got <= high
    assert got > 0 or name == "simulated_step_seconds"
