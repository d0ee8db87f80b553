"""The JSON wire format of fan-out events: round trips and rejection of garbage."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.catalogue import MAX_PROMPT_LENGTH
from domain.events import CreditsChanged, Event, GenerationChanged
from domain.generations import Generation, GenerationStatus
from domain.use_cases.generate_request import MAX_IDEMPOTENCY_KEY
from domain.use_cases.processing import MAX_ERROR_CODE, MAX_ERROR_MESSAGE
from infrastructure.pubsub.codec import (
    MAX_MESSAGE_BYTES,
    decode_event,
    encode_event,
    event_from_dict,
    event_to_dict,
)

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
FAILED = Generation(
    id=GEN.generation_id,
    user_id=GEN.user_id,
    model_id=uuid.UUID("44444444-4444-4444-8444-444444444444"),
    prompt="a red fox, «snow»",
    status=GenerationStatus.FAILED,
    created_at=AT - timedelta(minutes=1),
    updated_at=AT,
    params={"steps": 30, "cfg": 7.5, "style": ["ink", None, True]},
    board_id=GEN.board_id,
    preset_id=None,
    progress=0.42,
    error_code="PROVIDER_FAILED",
    error_message="it broke",
    reserved_credits=10,
    charged_credits=0,
    provider_task_id="task-1",
    idempotency_key="key-1",
    finished_at=AT,
    deadline_at=AT + timedelta(hours=1),
    submit_attempts=2,
    next_attempt_at=None,
    input_chunk_ids=[uuid.UUID("55555555-5555-4555-8555-555555555555")],
)
WITH_SNAPSHOT = GenerationChanged.of(FAILED, GenerationStatus.PROCESSING, AT)


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
        WITH_SNAPSHOT,
        CREDITS,
        CreditsChanged(user_id=uuid.uuid4(), balance=0, reserved=0, at=AT.astimezone(timezone(timedelta(hours=-5)))),
    ],
    ids=["generation", "generation-minimal", "generation-snapshot", "credits", "credits-offset"],
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


def test_snapshot_dict_shape() -> None:
    data = json.loads(encode_event(WITH_SNAPSHOT))
    assert {k: v for k, v in data.items() if k != "snapshot"} == {
        "type": "GenerationChanged",
        "generation_id": "11111111-1111-4111-8111-111111111111",
        "user_id": "22222222-2222-4222-8222-222222222222",
        "status": "failed",
        "previous_status": "processing",
        "progress": 0.42,
        "at": "2025-03-01T12:30:15.123456+00:00",
        "board_id": "33333333-3333-4333-8333-333333333333",
    }
    assert data["snapshot"] == {
        "model_id": "44444444-4444-4444-8444-444444444444",
        "preset_id": None,
        "prompt": "a red fox, «snow»",
        "params": {"steps": 30, "cfg": 7.5, "style": ["ink", None, True]},
        "reserved_credits": 10,
        "charged_credits": 0,
        "error_code": "PROVIDER_FAILED",
        "error_message": "it broke",
        "provider_task_id": "task-1",
        "idempotency_key": "key-1",
        "created_at": "2025-03-01T12:29:15.123456+00:00",
        "updated_at": "2025-03-01T12:30:15.123456+00:00",
        "finished_at": "2025-03-01T12:30:15.123456+00:00",
        "deadline_at": "2025-03-01T13:30:15.123456+00:00",
        "submit_attempts": 2,
        "next_attempt_at": None,
        "input_chunk_ids": ["55555555-5555-4555-8555-555555555555"],
    }


def test_an_old_format_event_decodes_without_a_snapshot() -> None:
    # given the message of a publisher older than snapshots (what event_to_dict(snapshot=False) writes)
    old = json.dumps(event_to_dict(WITH_SNAPSHOT, snapshot=False))
    # when it is decoded, then it is the same change with no generation to show
    decoded = decode_event(old)
    assert isinstance(decoded, GenerationChanged) and decoded.generation is None
    assert decoded == dataclasses.replace(WITH_SNAPSHOT, generation=None)


def test_a_maximal_prompt_and_error_message_fit_with_the_snapshot() -> None:
    # given the longest prompt, error and idempotency key, every character escaped on the wire, and 16 inputs
    longest = dataclasses.replace(
        FAILED,
        prompt="\x01" * MAX_PROMPT_LENGTH,
        error_code="\x02" * MAX_ERROR_CODE,
        error_message="\x03" * MAX_ERROR_MESSAGE,
        idempotency_key="\x04" * MAX_IDEMPOTENCY_KEY,
        input_chunk_ids=[uuid.uuid4() for _ in range(16)],
        params={f"p{i}": "x" * 200 for i in range(20)},
    )
    text = encode_event(GenerationChanged.of(longest, None, AT))
    # then the event keeps its snapshot under the cap
    assert len(text.encode()) <= MAX_MESSAGE_BYTES
    decoded = decode_event(text)
    assert isinstance(decoded, GenerationChanged) and decoded.generation == longest


def test_a_snapshot_too_large_for_the_wire_is_left_out() -> None:
    # given a generation whose params alone exceed the cap (params are bounded only by the request size)
    huge = dataclasses.replace(FAILED, params={"text": "é" * MAX_MESSAGE_BYTES})
    event = GenerationChanged.of(huge, GenerationStatus.PROCESSING, AT)
    # when it is encoded, then the message is the thin event, which subscribers read back
    text = encode_event(event)
    assert len(text.encode()) < 1024
    assert decode_event(text) == dataclasses.replace(event, generation=None)


def test_an_event_must_describe_the_generation_it_carries() -> None:
    with pytest.raises(ValueError):
        dataclasses.replace(WITH_SNAPSHOT, status=GenerationStatus.SUCCEEDED)
    with pytest.raises(ValueError):
        dataclasses.replace(WITH_SNAPSHOT, user_id=uuid.uuid4())


def _with_snapshot(**changes: Any) -> str:
    data = event_to_dict(WITH_SNAPSHOT)
    for key, value in changes.items():
        if value is _DELETE:
            del data["snapshot"][key]
        else:
            data["snapshot"][key] = value
    return json.dumps(data)


@pytest.mark.parametrize(
    "raw",
    [
        json.dumps(event_to_dict(WITH_SNAPSHOT) | {"snapshot": []}),
        json.dumps(event_to_dict(WITH_SNAPSHOT) | {"snapshot": "{}"}),
        json.dumps(event_to_dict(WITH_SNAPSHOT) | {"snapshot": {}}),
        _with_snapshot(model_id=_DELETE),
        _with_snapshot(model_id="nope"),
        _with_snapshot(model_id=None),
        _with_snapshot(prompt=None),
        _with_snapshot(prompt=42),
        _with_snapshot(params=[]),
        _with_snapshot(params="{}"),
        _with_snapshot(params=None),
        _with_snapshot(preset_id="nope"),
        _with_snapshot(preset_id=_DELETE),
        _with_snapshot(reserved_credits="10"),
        _with_snapshot(reserved_credits=1.5),
        _with_snapshot(charged_credits=True),
        _with_snapshot(error_code=7),
        _with_snapshot(error_message=["x"]),
        _with_snapshot(provider_task_id=1),
        _with_snapshot(idempotency_key=False),
        _with_snapshot(created_at="2025-03-01T12:30:15"),  # no timezone
        _with_snapshot(updated_at=None),
        _with_snapshot(finished_at="soon"),
        _with_snapshot(deadline_at=0),
        _with_snapshot(submit_attempts=None),
        _with_snapshot(next_attempt_at=_DELETE),
        _with_snapshot(input_chunk_ids=None),
        _with_snapshot(input_chunk_ids="55555555-5555-4555-8555-555555555555"),
        _with_snapshot(input_chunk_ids=["nope"]),
        _with_snapshot(input_chunk_ids=[1]),
        '{"type":"GenerationChanged","generation_id":"11111111-1111-4111-8111-111111111111",'
        '"user_id":"22222222-2222-4222-8222-222222222222","status":"processing","previous_status":null,'
        '"progress":0.5,"at":"2025-03-01T12:30:15+00:00","snapshot":{"params":{"x":NaN}}}',
    ],
)
def test_a_malformed_snapshot_raises_value_error(raw: str) -> None:
    with pytest.raises(ValueError):
        decode_event(raw)


def test_unknown_snapshot_keys_are_ignored() -> None:
    assert decode_event(_with_snapshot(thumbnail_from_a_newer_publisher="x")) == WITH_SNAPSHOT


_offsets = st.integers(min_value=-23 * 60, max_value=23 * 60).map(lambda m: timezone(timedelta(minutes=m)))
_aware = st.builds(
    lambda naive, tz: naive.replace(tzinfo=tz),
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1)),  # noqa: DTZ001
    _offsets,
)
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=12,
)
_finite = st.floats(allow_nan=False, allow_infinity=False)
_generations = st.builds(
    Generation,
    id=st.uuids(),
    user_id=st.uuids(),
    model_id=st.uuids(),
    prompt=st.text(),
    status=st.sampled_from(GenerationStatus),
    created_at=_aware,
    updated_at=_aware,
    params=st.dictionaries(st.text(), _json_values, max_size=5),
    board_id=st.none() | st.uuids(),
    preset_id=st.none() | st.uuids(),
    progress=_finite,
    error_code=st.none() | st.text(),
    error_message=st.none() | st.text(),
    reserved_credits=st.integers(min_value=-(2**63), max_value=2**63),
    charged_credits=st.integers(min_value=-(2**63), max_value=2**63),
    provider_task_id=st.none() | st.text(),
    idempotency_key=st.none() | st.text(),
    finished_at=st.none() | _aware,
    deadline_at=st.none() | _aware,
    submit_attempts=st.integers(min_value=0, max_value=2**31),
    next_attempt_at=st.none() | _aware,
    input_chunk_ids=st.lists(st.uuids(), max_size=16),
)
_snapshots = st.builds(GenerationChanged.of, _generations, st.none() | st.sampled_from(GenerationStatus), _aware)
_events = st.one_of(
    _snapshots,
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


@given(_snapshots)
def test_snapshot_round_trip_property(event: GenerationChanged) -> None:
    # given any generation that fits the wire: its event decodes to the very same generation
    decoded = decode_event(encode_event(event))
    assert isinstance(decoded, GenerationChanged) and decoded.generation is not None
    assert event.generation is not None and decoded.generation == event.generation
    assert decoded.generation.created_at.utcoffset() == event.generation.created_at.utcoffset()


@given(_snapshots, st.sampled_from(list(event_to_dict(WITH_SNAPSHOT)["snapshot"])), _json_values)
def test_a_snapshot_field_replaced_by_any_json_decodes_or_raises_value_error(
    event: GenerationChanged, key: str, value: Any
) -> None:
    data = event_to_dict(event)
    data["snapshot"][key] = value
    with contextlib.suppress(ValueError):
        decoded = decode_event(json.dumps(data))
        assert isinstance(decoded, GenerationChanged) and decoded.generation is not None


@given(st.one_of(st.text(max_size=300), st.binary(max_size=300)))
def test_arbitrary_input_decodes_or_raises_value_error(raw: str | bytes) -> None:
    with contextlib.suppress(ValueError):
        decode_event(raw)
