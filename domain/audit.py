"""The audit log of admin actions: who did what to whom, from where, and how it ended.

One entry per admin action, written in the transaction of the change it records (so a
change never exists without its entry, nor an entry without its change). An action an
admin attempted and the domain refused (bad input, a missing target, a forbidden target)
is recorded too, in a transaction of its own. Callers who are not admins are refused
before anything is recorded: they cannot fill the log. Entries are never changed or
deleted; their `details` hold no secrets (no passwords, tokens, or admin setting values).
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.users import Principal

#: The actor name of the trusted operator (the CLI, seeding), who has no account.
OPERATOR = "cli"
#: What the entry keeps of an address or request id a client may have chosen.
MAX_ORIGIN_LENGTH = 100
#: What the entry keeps of a text detail (a reason, a name) the caller wrote.
MAX_DETAIL_LENGTH = 200


class AuditAction(enum.StrEnum):
    SUSPEND_USER = "suspend_user"
    REINSTATE_USER = "reinstate_user"
    GRANT_CREDITS = "grant_credits"
    UPSERT_MODEL = "upsert_model"
    UPSERT_PRESET = "upsert_preset"
    SET_ADMIN_SETTING = "set_admin_setting"
    APPLY_CATALOGUE = "apply_catalogue"
    CREATE_API_KEY = "create_api_key"
    REVOKE_API_KEY = "revoke_api_key"


class AuditOutcome(enum.StrEnum):
    APPLIED = "applied"  # the change was made
    UNCHANGED = "unchanged"  # accepted, but nothing was left to change (a replay, a repeated suspension)
    REFUSED = "refused"  # the domain refused it; `error_code` says why


@dataclass(frozen=True, slots=True)
class RequestOrigin:
    """Where an API call came from, as the transport saw it."""

    client_address: str | None = None
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: uuid.UUID
    created_at: datetime
    #: The admin's user id; None with `actor` == OPERATOR.
    actor_id: uuid.UUID | None
    actor: str  # "admin" or OPERATOR
    action: AuditAction
    outcome: AuditOutcome
    #: The object acted on: a user's or model's id, a preset's, a setting's key; None for the catalogue file.
    target_id: str | None
    target_user_id: uuid.UUID | None = None
    error_code: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    client_address: str | None = None
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class AuditFilter:
    action: AuditAction | None = None
    actor_id: uuid.UUID | None = None
    target_id: str | None = None


@dataclass(frozen=True, slots=True)
class Attempt:
    """An admin action about to be tried: everything its entry needs but the outcome."""

    action: AuditAction
    actor: Principal | None  # None: the operator
    at: datetime
    target_id: str | None
    target_user_id: uuid.UUID | None = None
    origin: RequestOrigin = RequestOrigin()
    #: What was asked (kept also when it is refused): small values, text clipped.
    details: dict[str, Any] = field(default_factory=dict)

    def entry(
        self, outcome: AuditOutcome, details: dict[str, Any] | None = None, *, error_code: str | None = None
    ) -> AuditEntry:
        """The attempt's entry: what was asked, with `details` (what came of it) over it."""
        return AuditEntry(
            id=uuid.uuid4(),
            created_at=self.at,
            actor_id=self.actor.user_id if self.actor is not None else None,
            actor="admin" if self.actor is not None else OPERATOR,
            action=self.action,
            outcome=outcome,
            target_id=_clip(self.target_id),
            target_user_id=self.target_user_id,
            error_code=error_code,
            details={k: _small(v) for k, v in {**self.details, **(details or {})}.items()},
            client_address=_clip(self.origin.client_address),
            request_id=_clip(self.origin.request_id),
        )


def _small(value: Any) -> Any:
    """Text clipped to MAX_DETAIL_LENGTH; numbers, booleans and null as they are; anything else as text."""
    if value is None or isinstance(value, bool | int | float):
        return value
    text = value if isinstance(value, str) else str(value)
    return text[:MAX_DETAIL_LENGTH]


def _clip(value: str | None) -> str | None:
    """The columns' width (an id, an address, a setting's key): a longer value is cut, not refused."""
    return value[:MAX_ORIGIN_LENGTH] if value is not None else None
