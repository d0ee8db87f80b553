"""Strict readers of one field of an untrusted JSON object: each raises ``ValueError`` unless
the value is there and has exactly the expected type (a bool is not an integer, NaN not a number).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any


def required(data: Mapping[str, Any], key: str) -> Any:
    if key not in data:
        raise ValueError(f"missing field {key!r}")
    return data[key]


def uuid_value(value: Any, key: str) -> uuid.UUID:
    if not isinstance(value, str):
        raise ValueError(f"field {key!r} must be a UUID string")
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise ValueError(f"field {key!r} is not a UUID") from exc


def datetime_field(data: Mapping[str, Any], key: str) -> datetime:
    value = required(data, key)
    return aware_value(value, key)


def datetime_or_none(data: Mapping[str, Any], key: str) -> datetime | None:
    value = required(data, key)
    return None if value is None else aware_value(value, key)


def aware_value(value: Any, key: str) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"field {key!r} must be an ISO-8601 string")
    parsed = datetime.fromisoformat(value)  # raises ValueError
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(f"field {key!r} has no timezone")
    return parsed


def text_field(data: Mapping[str, Any], key: str) -> str:
    value = required(data, key)
    if not isinstance(value, str):
        raise ValueError(f"field {key!r} must be a string")
    return value


def text_or_none(data: Mapping[str, Any], key: str) -> str | None:
    value = required(data, key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"field {key!r} must be a string or null")
    return value


def uuid_or_none(data: Mapping[str, Any], key: str) -> uuid.UUID | None:
    value = required(data, key)
    return None if value is None else uuid_value(value, key)


def uuid_list(data: Mapping[str, Any], key: str) -> list[uuid.UUID]:
    value = required(data, key)
    if not isinstance(value, list):
        raise ValueError(f"field {key!r} must be a list")
    return [uuid_value(item, key) for item in value]


def object_field(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = required(data, key)
    if not isinstance(value, dict):
        raise ValueError(f"field {key!r} must be a JSON object")
    return value


def int_field(data: Mapping[str, Any], key: str) -> int:
    value = required(data, key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"field {key!r} must be an integer")
    return value


def float_field(data: Mapping[str, Any], key: str) -> float:
    value = required(data, key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"field {key!r} must be a finite number")
    return float(value)
