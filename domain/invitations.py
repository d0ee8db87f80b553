"""Board invitations: how a board's manager shares it by e-mail without learning who has an account.

An invitation is keyed by the board and the normalised address; it holds the address as the
inviter typed it (what the managers are shown: never anything read from an account), the role
to grant, and when it expires. Whoever signs in with that address (now or after registering
later) may accept it, and becomes a member with that role, or decline it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.boards import BoardRole
from domain.errors import InvalidInput
from domain.text import text_problem
from domain.users import MAX_EMAIL_LENGTH, is_email_address, normalize_email


@dataclass(frozen=True, slots=True)
class InvitationRules:
    """How long an invitation stays open, and how many may be open per board at once."""

    ttl: timedelta
    max_pending_per_board: int


@dataclass(frozen=True, slots=True)
class BoardInvitation:
    board_id: uuid.UUID
    email: str  # normalised: what an account's e-mail is compared with
    email_as_typed: str  # what the inviter typed (trimmed): what the board's managers see
    role: BoardRole
    invited_by: uuid.UUID | None
    created_at: datetime
    expires_at: datetime

    def open_at(self, now: datetime) -> bool:
        return self.expires_at > now


@dataclass(frozen=True, slots=True)
class InvitationView:
    """An invitation with the name of its board, as its invitee (not yet a member) sees it."""

    invitation: BoardInvitation
    board_name: str


@dataclass(frozen=True, slots=True)
class InvitedAddress:
    typed: str
    normalised: str


def invited_address(raw: str) -> InvitedAddress:
    """The address of an invitation, or InvalidInput: a check of the text alone, never of accounts.

    Any address that could register (the registration rule) can be invited.
    """
    typed = raw.strip()
    normalised = normalize_email(raw)
    if len(typed) > MAX_EMAIL_LENGTH or not is_email_address(normalised) or text_problem(raw) is not None:
        raise InvalidInput.single("email", "must be an e-mail address")
    return InvitedAddress(typed=typed, normalised=normalised)
