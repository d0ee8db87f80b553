"""Cursor helper for Relay connections built from domain pages (cursor = created_at + id, signed)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol

from domain.cursors import Cursor, CursorCodec


class Keyed(Protocol):
    @property
    def id(self) -> uuid.UUID: ...
    @property
    def created_at(self) -> datetime: ...


def cursor_of(item: Keyed, cursors: CursorCodec) -> str:
    return cursors.encode(Cursor(item.created_at, item.id))
