"""Parsing client-supplied IDs (UUID strings) into typed values with field-level errors."""

from __future__ import annotations

import uuid

from domain.errors import InvalidInput, NotFound


def parse_id(value: str, field_name: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise InvalidInput.single(field_name, "must be a UUID") from exc


def lookup_id(value: str, entity: str) -> uuid.UUID:
    """For `thing(id:)` lookups a malformed ID is simply an object that does not exist."""
    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise NotFound(entity) from exc
