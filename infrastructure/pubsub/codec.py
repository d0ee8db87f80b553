"""JSON wire format of the domain events published on a user's fan-out channel.

An event is a JSON object with a ``"type"`` field (``"GenerationChanged"`` or
``"CreditsChanged"``) and its fields: UUIDs as strings, datetimes as ISO-8601 with a
UTC offset, statuses as their string value, numbers as JSON numbers.

Messages arrive from Redis, so decoding treats them as untrusted: anything that is not
exactly a well-formed event raises ``ValueError`` (the subscriber side skips it).
Unknown extra keys are ignored, so a newer publisher can add fields during a rolling
deploy without breaking older subscribers.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from domain.events import CreditsChanged, Event, GenerationChanged
from domain.generations import GenerationStatus

GENERATION_CHANGED: Final = "GenerationChanged"
CREDITS_CHANGED: Final = "CreditsChanged"

#: Larger messages are rejected before parsing (a real event is ~300 bytes).
MAX_MESSAGE_BYTES: Final = 64 * 1024


# ------------------------------------------------------------------ encode


def _iso(value: datetime) -> str:
    """ISO-8601 with offset; a naive datetime (SQLite drops the zone) is taken as UTC."""
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def event_to_dict(event: Event) -> dict[str, Any]:
    """The JSON-ready dict of an event (with its ``"type"``)."""
    if isinstance(event, GenerationChanged):
        return {
            "type": GENERATION_CHANGED,
            "generation_id": str(event.generation_id),
            "user_id": str(event.user_id),
            "status": event.status.value,
            "previous_status": event.previous_status.value if event.previous_status is not None else None,
            "progress": event.progress,
            "at": _iso(event.at),
            "board_id": str(event.board_id) if event.board_id is not None else None,
        }
    if isinstance(event, CreditsChanged):
        return {
            "type": CREDITS_CHANGED,
            "user_id": str(event.user_id),
            "balance": event.balance,
            "reserved": event.reserved,
            "at": _iso(event.at),
        }
    raise TypeError(f"not a domain event: {type(event).__name__}")


def encode_event(event: Event) -> str:
    """Compact JSON text of an event. Raises ``ValueError`` for a non-finite progress."""
    return json.dumps(event_to_dict(event), separators=(",", ":"), allow_nan=False)


# ------------------------------------------------------------------ decode


def _field(data: Mapping[str, Any], key: str) -> Any:
    if key not in data:
        raise ValueError(f"missing field {key!r}")
    return data[key]


def _uuid(value: Any, key: str) -> uuid.UUID:
    if not isinstance(value, str):
        raise ValueError(f"field {key!r} must be a UUID string")
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise ValueError(f"field {key!r} is not a UUID") from exc


def _status(value: Any, key: str) -> GenerationStatus:
    if not isinstance(value, str):
        raise ValueError(f"field {key!r} must be a status string")
    try:
        return GenerationStatus(value)
    except ValueError as exc:
        raise ValueError(f"field {key!r} is not a generation status: {value!r}") from exc


def _datetime(data: Mapping[str, Any], key: str) -> datetime:
    value = _field(data, key)
    if not isinstance(value, str):
        raise ValueError(f"field {key!r} must be an ISO-8601 string")
    parsed = datetime.fromisoformat(value)  # raises ValueError
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(f"field {key!r} has no timezone")
    return parsed


def _int(data: Mapping[str, Any], key: str) -> int:
    value = _field(data, key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"field {key!r} must be an integer")
    return value


def _float(data: Mapping[str, Any], key: str) -> float:
    value = _field(data, key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"field {key!r} must be a finite number")
    return float(value)


def event_from_dict(data: Mapping[str, Any]) -> Event:
    """Rebuild an event from its dict; raises ``ValueError`` when it is not a valid event."""
    if not isinstance(data, Mapping):
        raise ValueError("an event must be a JSON object")
    kind = data.get("type")
    if kind == GENERATION_CHANGED:
        previous = data.get("previous_status")
        board = data.get("board_id")
        return GenerationChanged(
            generation_id=_uuid(_field(data, "generation_id"), "generation_id"),
            user_id=_uuid(_field(data, "user_id"), "user_id"),
            status=_status(_field(data, "status"), "status"),
            previous_status=None if previous is None else _status(previous, "previous_status"),
            progress=_float(data, "progress"),
            at=_datetime(data, "at"),
            board_id=None if board is None else _uuid(board, "board_id"),
        )
    if kind == CREDITS_CHANGED:
        return CreditsChanged(
            user_id=_uuid(_field(data, "user_id"), "user_id"),
            balance=_int(data, "balance"),
            reserved=_int(data, "reserved"),
            at=_datetime(data, "at"),
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
