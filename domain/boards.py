"""Boards share generations between users; roles decide who may do what."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime

from domain.errors import Problems
from domain.text import name_problem


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


@dataclass(frozen=True, slots=True)
class Membership:
    """A member as a page of members lists them: ordered by when they joined (`created_at`),
    ties broken by the user's id (`id`)."""

    member: BoardMember
    created_at: datetime

    @property
    def id(self) -> uuid.UUID:
        return self.member.user_id


@dataclass(frozen=True, slots=True)
class MemberBoard:
    """A board as a page of the viewer's boards lists it, with the viewer's role."""

    board: Board
    role: BoardRole

    @property
    def id(self) -> uuid.UUID:
        return self.board.id

    @property
    def created_at(self) -> datetime:
        return self.board.created_at


def validate_board_name(name: str) -> str:
    cleaned = name.strip()
    problems = Problems()
    if (why := name_problem(cleaned, 120)) is not None:
        problems.add("name", why)
    problems.raise_if_any()
    return cleaned
