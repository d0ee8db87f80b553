"""JSON wire format of the domain events published on a user's fan-out channel.

An event is a JSON object with a ``"type"`` field (``"GenerationChanged"`` or
``"CreditsChanged"``) and its fields: UUIDs as strings, datetimes as ISO-8601 with a
UTC offset, statuses as their string value, numbers as JSON numbers.

A ``GenerationChanged`` also carries ``"snapshot"``: the generation as the publisher
committed it, every field of the domain ``Generation`` except those already at the top
level (``generation_id``, ``user_id``, ``status``, ``progress``, ``board_id``), so a
subscriber shows it without reading the row back. An event without it is still valid:
publishers older than snapshots send none, and :func:`encode_event` leaves it out when
the event would exceed ``MAX_MESSAGE_BYTES`` (params are bounded only by the request size);
subscribers then read the generation back (``infrastructure.pubsub.feed``).

Messages arrive from Redis, so decoding treats them as untrusted: anything that is not
exactly a well-formed event raises ``ValueError`` (the subscriber side skips it).
Unknown extra keys are ignored, so a newer publisher can add fields during a rolling
deploy without breaking older subscribers.

The encoder and the decoder stay side by side, field by field, so that they cannot drift
apart; the strict readers of single JSON fields they use are in ``json_fields``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from domain.events import CreditsChanged, Event, GenerationChanged
from domain.generations import Generation, GenerationStatus
from infrastructure.pubsub.json_fields import (
    datetime_field,
    datetime_or_none,
    float_field,
    int_field,
    object_field,
    required,
    text_field,
    text_or_none,
    uuid_list,
    uuid_or_none,
    uuid_value,
)

GENERATION_CHANGED: Final = "GenerationChanged"
CREDITS_CHANGED: Final = "CreditsChanged"

#: Larger messages are rejected before parsing. A thin event is ~300 bytes; a snapshot with
#: the longest prompt (4,000 characters), error message (2,000) and idempotency key (128),
#: every character escaped as ``\u00XX``, and 16 inputs is about 38 KB: the rest is room for
#: params. A bigger event is published without its snapshot (see the module docstring).
MAX_MESSAGE_BYTES: Final = 64 * 1024


# ------------------------------------------------------------------ encode


def _iso(value: datetime) -> str:
    """ISO-8601 with offset; a naive datetime (SQLite drops the zone) is taken as UTC."""
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def _iso_opt(value: datetime | None) -> str | None:
    return None if value is None else _iso(value)


def _str_opt(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


def snapshot_to_dict(g: Generation) -> dict[str, Any]:
    """The fields of a generation that the event's top level does not carry already."""
    return {
        "model_id": str(g.model_id),
        "preset_id": _str_opt(g.preset_id),
        "prompt": g.prompt,
        "params": g.params,
        "reserved_credits": g.reserved_credits,
        "charged_credits": g.charged_credits,
        "error_code": g.error_code,
        "error_message": g.error_message,
        "provider_task_id": g.provider_task_id,
        "idempotency_key": g.idempotency_key,
        "created_at": _iso(g.created_at),
        "updated_at": _iso(g.updated_at),
        "finished_at": _iso_opt(g.finished_at),
        "deadline_at": _iso_opt(g.deadline_at),
        "submit_attempts": g.submit_attempts,
        "next_attempt_at": _iso_opt(g.next_attempt_at),
        "input_chunk_ids": [str(c) for c in g.input_chunk_ids],
    }


def event_to_dict(event: Event, *, snapshot: bool = True) -> dict[str, Any]:
    """The JSON-ready dict of an event (with its ``"type"``); ``snapshot=False``: the thin form."""
    if isinstance(event, GenerationChanged):
        data: dict[str, Any] = {
            "type": GENERATION_CHANGED,
            "generation_id": str(event.generation_id),
            "user_id": str(event.user_id),
            "status": event.status.value,
            "previous_status": event.previous_status.value if event.previous_status is not None else None,
            "progress": event.progress,
            "at": _iso(event.at),
            "board_id": _str_opt(event.board_id),
        }
        if event.thumbnails_pending:
            data["thumbnails_pending"] = event.thumbnails_pending
        if snapshot and event.generation is not None:
            data["snapshot"] = snapshot_to_dict(event.generation)
        return data
    if isinstance(event, CreditsChanged):
        return {
            "type": CREDITS_CHANGED,
            "user_id": str(event.user_id),
            "balance": event.balance,
            "reserved": event.reserved,
            "at": _iso(event.at),
        }
    raise TypeError(f"not a domain event: {type(event).__name__}")


def _dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"), allow_nan=False, ensure_ascii=False)


def encode_event(event: Event) -> str:
    """Compact JSON text of an event, thin when its snapshot would not fit ``MAX_MESSAGE_BYTES``.

    Raises ``ValueError`` for a non-finite number (progress, or in params).
    """
    text = _dumps(event_to_dict(event))
    if isinstance(event, GenerationChanged) and len(text.encode("utf-8", "surrogatepass")) > MAX_MESSAGE_BYTES:
        return _dumps(event_to_dict(event, snapshot=False))
    return text


# ------------------------------------------------------------------ decode


def _status(value: Any, key: str) -> GenerationStatus:
    if not isinstance(value, str):
        raise ValueError(f"field {key!r} must be a status string")
    try:
        return GenerationStatus(value)
    except ValueError as exc:
        raise ValueError(f"field {key!r} is not a generation status: {value!r}") from exc


def _snapshot(
    data: Any,
    *,
    generation_id: uuid.UUID,
    user_id: uuid.UUID,
    status: GenerationStatus,
    progress: float,
    board_id: uuid.UUID | None,
    thumbnails_pending: int,
) -> Generation:
    """The generation of a ``"snapshot"`` object, completed by the event's top-level fields."""
    if not isinstance(data, dict):
        raise ValueError("field 'snapshot' must be a JSON object")
    return Generation(
        id=generation_id,
        user_id=user_id,
        model_id=uuid_value(required(data, "model_id"), "model_id"),
        prompt=text_field(data, "prompt"),
        status=status,
        created_at=datetime_field(data, "created_at"),
        updated_at=datetime_field(data, "updated_at"),
        params=object_field(data, "params"),
        board_id=board_id,
        preset_id=uuid_or_none(data, "preset_id"),
        progress=progress,
        error_code=text_or_none(data, "error_code"),
        error_message=text_or_none(data, "error_message"),
        reserved_credits=int_field(data, "reserved_credits"),
        charged_credits=int_field(data, "charged_credits"),
        provider_task_id=text_or_none(data, "provider_task_id"),
        idempotency_key=text_or_none(data, "idempotency_key"),
        finished_at=datetime_or_none(data, "finished_at"),
        deadline_at=datetime_or_none(data, "deadline_at"),
        submit_attempts=int_field(data, "submit_attempts"),
        next_attempt_at=datetime_or_none(data, "next_attempt_at"),
        input_chunk_ids=uuid_list(data, "input_chunk_ids"),
        thumbnails_pending=thumbnails_pending,
    )


def event_from_dict(data: Mapping[str, Any]) -> Event:
    """Rebuild an event from its dict; raises ``ValueError`` when it is not a valid event."""
    if not isinstance(data, Mapping):
        raise ValueError("an event must be a JSON object")
    kind = data.get("type")
    if kind == GENERATION_CHANGED:
        previous = data.get("previous_status")
        board = data.get("board_id")
        generation_id = uuid_value(required(data, "generation_id"), "generation_id")
        user_id = uuid_value(required(data, "user_id"), "user_id")
        status = _status(required(data, "status"), "status")
        progress = float_field(data, "progress")
        board_id = None if board is None else uuid_value(board, "board_id")
        pending = int_field(data, "thumbnails_pending") if "thumbnails_pending" in data else 0
        if pending < 0:
            raise ValueError("field 'thumbnails_pending' must not be negative")
        snapshot = data.get("snapshot")
        return GenerationChanged(
            generation_id=generation_id,
            user_id=user_id,
            status=status,
            previous_status=None if previous is None else _status(previous, "previous_status"),
            progress=progress,
            at=datetime_field(data, "at"),
            board_id=board_id,
            generation=None
            if snapshot is None
            else _snapshot(
                snapshot,
                generation_id=generation_id,
                user_id=user_id,
                status=status,
                progress=progress,
                board_id=board_id,
                thumbnails_pending=pending,
            ),
            thumbnails_pending=pending,
        )
    if kind == CREDITS_CHANGED:
        return CreditsChanged(
            user_id=uuid_value(required(data, "user_id"), "user_id"),
            balance=int_field(data, "balance"),
            reserved=int_field(data, "reserved"),
            at=datetime_field(data, "at"),
        )
    raise ValueError(f"unknown event type: {kind!r}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name} is not allowed")


def decode_event(raw: str | bytes) -> Event:
    """Parse one message; every malformed input raises ``ValueError``."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise ValueError(f"message too large ({len(raw)} > {MAX_MESSAGE_BYTES})")
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        data = json.loads(text, parse_constant=_reject_constant)
    except RecursionError as exc:  # absurdly nested JSON
        raise ValueError("message nested too deeply") from exc
    # (json.JSONDecodeError and UnicodeDecodeError are ValueErrors already)
    if not isinstance(data, dict):
        raise ValueError("an event must be a JSON object")
    return event_from_dict(data)
