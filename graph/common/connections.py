"""Cursor helper for Relay connections built from domain pages (cursor = created_at + id)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol

from domain.pagination import Cursor


class Keyed(Protocol):
    @property
    def id(self) -> uuid.UUID: ...
    @property
    def created_at(self) -> datetime: ...


def cursor_of(item: Keyed) -> str:
    return Cursor(item.created_at, item.id).encode()
