"""Boards share generations between users; roles decide who may do what."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime

from domain.errors import Problems


class BoardRole(enum.StrEnum):
    OWNER = "owner"
    EDITOR = "editor"
    VIEWER = "viewer"

    @property
    def can_generate(self) -> bool:
        return self in (BoardRole.OWNER, BoardRole.EDITOR)

    @property
    def can_manage(self) -> bool:
        return self is BoardRole.OWNER


@dataclass(frozen=True, slots=True)
class Board:
    id: uuid.UUID
    name: str
    created_by: uuid.UUID
    created_at: datetime


@dataclass(frozen=True, slots=True)
class BoardMember:
    board_id: uuid.UUID
    user_id: uuid.UUID
    role: BoardRole


def validate_board_name(name: str) -> str:
    cleaned = name.strip()
    problems = Problems()
    if not cleaned or len(cleaned) > 120:
        problems.add("name", "must be 1-120 characters")
    problems.raise_if_any()
    return cleaned
