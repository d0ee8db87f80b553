"""The JSON wire format of fan-out events: round trips and rejection of garbage."""

from __future__ import annotations

import contextlib
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.events import CreditsChanged, Event, GenerationChanged
from domain.generations import GenerationStatus
from infrastructure.pubsub.codec import decode_event, encode_event, event_from_dict, event_to_dict

AT = datetime(2025, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
GEN = GenerationChanged(
    generation_id=uuid.UUID("11111111-1111-4111-8111-111111111111"),
    user_id=uuid.UUID("22222222-2222-4222-8222-222222222222"),
    status=GenerationStatus.PROCESSING,
    previous_status=GenerationStatus.SUBMITTING,
    progress=0.42,
    at=AT,
    board_id=uuid.UUID("33333333-3333-4333-8333-333333333333"),
)
CREDITS = CreditsChanged(user_id=GEN.user_id, balance=1000, reserved=25, at=AT)


@pytest.mark.parametrize(
    "event",
    [
        GEN,
        GenerationChanged(
            generation_id=uuid.uuid4(),
            user_id=uuid.uuid4(),
            status=GenerationStatus.QUEUED,
            previous_status=None,
            progress=0,
            at=AT,
        ),
        CREDITS,
        CreditsChanged(user_id=uuid.uuid4(), balance=0, reserved=0, at=AT.astimezone(timezone(timedelta(hours=-5)))),
    ],
    ids=["generation", "generation-minimal", "credits", "credits-offset"],
)
def test_round_trip(event: Event) -> None:
    text = encode_event(event)
    assert decode_event(text) == event
    assert decode_event(text.encode()) == event
    assert event_from_dict(event_to_dict(event)) == event


def test_generation_dict_shape() -> None:
    data = json.loads(encode_event(GEN))
    assert data == {
        "type": "GenerationChanged",
        "generation_id": "11111111-1111-4111-8111-111111111111",
        "user_id": "22222222-2222-4222-8222-222222222222",
        "status": "processing",
        "previous_status": "submitting",
        "progress": 0.42,
        "at": "2025-03-01T12:30:15.123456+00:00",
        "board_id": "33333333-3333-4333-8333-333333333333",
    }


def test_credits_dict_shape() -> None:
    assert event_to_dict(CREDITS) == {
        "type": "CreditsChanged",
        "user_id": "22222222-2222-4222-8222-222222222222",
        "balance": 1000,
        "reserved": 25,
        "at": "2025-03-01T12:30:15.123456+00:00",
    }


def test_offset_is_preserved() -> None:
    at = datetime(2025, 1, 1, 9, 0, tzinfo=timezone(timedelta(hours=2)))
    data = event_to_dict(CreditsChanged(user_id=uuid.uuid4(), balance=1, reserved=0, at=at))
    assert data["at"] == "2025-01-01T09:00:00+02:00"


def test_naive_datetime_is_encoded_as_utc() -> None:
    naive = datetime(2025, 1, 1, 9, 0)  # noqa: DTZ001 - what SQLite hands back
    decoded = decode_event(encode_event(CreditsChanged(user_id=uuid.uuid4(), balance=1, reserved=0, at=naive)))
    assert decoded.at == naive.replace(tzinfo=UTC)
    assert decoded.at.tzinfo is not None


def test_extra_keys_are_ignored() -> None:
    data = event_to_dict(GEN) | {"new_field_from_a_newer_publisher": [1, 2]}
    assert decode_event(json.dumps(data)) == GEN


def test_non_finite_progress_cannot_be_encoded() -> None:
    event = GenerationChanged(
        generation_id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        status=GenerationStatus.PROCESSING,
        previous_status=None,
        progress=float("nan"),
        at=AT,
    )
    with pytest.raises(ValueError):
        encode_event(event)


def _with(**changes: Any) -> str:
    data = event_to_dict(GEN)
    for key, value in changes.items():
        if value is _DELETE:
            del data[key]
        else:
            data[key] = value
    return json.dumps(data)


_DELETE = object()


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "not json",
        "{",
        "null",
        "42",
        '"GenerationChanged"',
        "[]",
        "{}",
        '{"type": "Nope"}',
        '{"type": null}',
        b"\xff\xfe\x00garbage",
        "[" * 100_000 + "]" * 100_000,
        '{"type": "CreditsChanged", "pad": "' + "x" * 70_000 + '"}',
        _with(type="CreditsChanged"),
        _with(generation_id=_DELETE),
        _with(generation_id="not-a-uuid"),
        _with(generation_id=123),
        _with(user_id=None),
        _with(status="exploded"),
        _with(status=None),
        _with(previous_status="exploded"),
        _with(progress="0.5"),
        _with(progress=True),
        _with(progress=None),
        _with(at="yesterday"),
        _with(at="2025-03-01T12:30:15"),  # no timezone
        _with(at=1740832215),
        _with(board_id="nope"),
        _with(board_id=7),
        '{"type":"GenerationChanged","generation_id":"11111111-1111-4111-8111-111111111111",'
        '"user_id":"22222222-2222-4222-8222-222222222222","status":"processing","previous_status":null,'
        '"progress":NaN,"at":"2025-03-01T12:30:15+00:00"}',
        '{"type":"CreditsChanged","user_id":"22222222-2222-4222-8222-222222222222","balance":1.5,'
        '"reserved":0,"at":"2025-03-01T12:30:15+00:00"}',
        '{"type":"CreditsChanged","user_id":"22222222-2222-4222-8222-222222222222","balance":false,'
        '"reserved":0,"at":"2025-03-01T12:30:15+00:00"}',
        '{"type":"CreditsChanged","user_id":"22222222-2222-4222-8222-222222222222","balance":1,'
        '"at":"2025-03-01T12:30:15+00:00"}',
    ],
)
def test_garbage_raises_value_error(raw: str | bytes) -> None:
    with pytest.raises(ValueError):
        decode_event(raw)


def test_event_from_dict_rejects_non_mapping() -> None:
    with pytest.raises(ValueError):
        event_from_dict([])  # type: ignore[arg-type]


_offsets = st.integers(min_value=-23 * 60, max_value=23 * 60).map(lambda m: timezone(timedelta(minutes=m)))
_aware = st.builds(
    lambda naive, tz: naive.replace(tzinfo=tz),
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1)),  # noqa: DTZ001
    _offsets,
)
_events = st.one_of(
    st.builds(
        GenerationChanged,
        generation_id=st.uuids(),
        user_id=st.uuids(),
        status=st.sampled_from(GenerationStatus),
        previous_status=st.none() | st.sampled_from(GenerationStatus),
        progress=st.floats(allow_nan=False, allow_infinity=False),
        at=_aware,
        board_id=st.none() | st.uuids(),
    ),
    st.builds(
        CreditsChanged,
        user_id=st.uuids(),
        balance=st.integers(min_value=-(2**63), max_value=2**63),
        reserved=st.integers(min_value=0, max_value=2**63),
        at=_aware,
    ),
)


@given(_events)
def test_round_trip_property(event: Event) -> None:
    decoded = decode_event(encode_event(event))
    assert decoded == event
    assert decoded.at.utcoffset() == event.at.utcoffset()


@given(st.one_of(st.text(max_size=300), st.binary(max_size=300)))
def test_arbitrary_input_decodes_or_raises_value_error(raw: str | bytes) -> None:
    with contextlib.suppress(ValueError):
        decode_event(raw)
