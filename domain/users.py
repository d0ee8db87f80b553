"""Users and the rules for their credentials."""

from __future__ import annotations

import enum
import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from domain.api_keys import Scope
from domain.errors import Problems

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256
MAX_EMAIL_LENGTH = 254
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class Role(enum.StrEnum):
    USER = "user"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class User:
    id: uuid.UUID
    email: str
    role: Role
    created_at: datetime
    password_hash: str = ""
    #: Set on a deleted account's tombstone (its e-mail replaced, no password).
    deleted_at: datetime | None = None
    #: Bumped by every revocation of all the user's sessions (see AccessState).
    session_version: int = 0
    suspended_at: datetime | None = None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def is_suspended(self) -> bool:
        return self.suspended_at is not None


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, as proven by a verified access token (no database read).

    `session_id` is the refresh-token family the token was issued for (None for tokens
    minted outside a sign-in, by the CLI or tests); `session_version` the user's
    `session_version` when it was issued. The access gate compares both with AccessState.

    A principal proven by an API key (domain/api_keys.py) has `api_key_id` set and `scopes`
    (what the key may do); a session's `scopes` is None (not restricted).
    """

    user_id: uuid.UUID
    role: Role
    session_id: uuid.UUID | None = None
    session_version: int = 0
    api_key_id: uuid.UUID | None = None
    scopes: frozenset[Scope] | None = None

    @property
    def is_admin(self) -> bool:
        """Administrator rights for reading (other users' objects, inactive models, admin-only fields).

        A key has them only when its owner is an administrator and it holds an admin scope
        (the key gate gives such keys Role.ADMIN, every other key Role.USER).
        """
        return self.role is Role.ADMIN

    @property
    def may_override(self) -> bool:
        """Administrator rights for acting on other users' objects (cancelling, deleting their
        generations): a session's administrator, or an administrator's key holding `admin:write`."""
        return self.is_admin and (self.scopes is None or Scope.ADMIN_WRITE in self.scopes)


@dataclass(frozen=True, slots=True)
class AccessState:
    """What decides whether a user's already-issued access tokens still work.

    `ended_sessions`: refresh families revoked recently enough that access tokens issued
    for them may still be unexpired (sign-out of one session, refresh-token reuse).
    """

    session_version: int
    suspended: bool
    ended_sessions: frozenset[uuid.UUID] = frozenset()

    def refusal(self, principal: Principal) -> str | None:
        """Why the principal's token is refused, or None when it is admitted."""
        if self.suspended:
            return "The account is suspended."
        if principal.api_key_id is not None:
            # Keys are not sessions: a password change or signing out everywhere leaves them working.
            return None
        if principal.session_version < self.session_version:
            return "The session was ended (password changed or reset, or signed out everywhere): sign in again."
        if principal.session_id is not None and principal.session_id in self.ended_sessions:
            return "This session was signed out: sign in again."
        return None


def normalize_email(raw: str) -> str:
    return raw.strip().lower()


def is_email_address(address: str) -> bool:
    """Whether a normalised address has the shape an account's may have."""
    return len(address) <= MAX_EMAIL_LENGTH and _EMAIL_RE.match(address) is not None


def validate_registration(email: str, password: str) -> None:
    problems = Problems()
    if not is_email_address(email):
        problems.add("email", "must be a valid e-mail address")
    add_password_problems(problems, password, "password")
    problems.raise_if_any()


def validate_new_password(password: str, field: str = "newPassword") -> None:
    """A password being set (changed or reset) follows the registration rules."""
    problems = Problems()
    add_password_problems(problems, password, field)
    problems.raise_if_any()


def add_password_problems(problems: Problems, password: str, field: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.add(field, f"must be at least {MIN_PASSWORD_LENGTH} characters long")
    elif len(password) > MAX_PASSWORD_LENGTH:
        problems.add(field, f"must be at most {MAX_PASSWORD_LENGTH} characters long")
    elif password.strip() == "" or len(set(password)) < 4:
        problems.add(field, "is too simple")


def refresh_token_hash(token: str) -> str:
    """Refresh tokens (and password reset tokens) are stored only as this hash."""
    return hashlib.sha256(token.encode()).hexdigest()
