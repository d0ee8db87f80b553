"""Generations and their state machine.

queued -> submitting -> processing -> succeeded | failed | canceled, plus expired.
Illegal transitions raise InvalidState; final states never change again.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.errors import InvalidState


class GenerationStatus(enum.StrEnum):
    QUEUED = "queued"
    SUBMITTING = "submitting"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    EXPIRED = "expired"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset(
    {
        GenerationStatus.SUCCEEDED,
        GenerationStatus.FAILED,
        GenerationStatus.CANCELED,
        GenerationStatus.EXPIRED,
    }
)
ACTIVE_STATUSES = frozenset(set(GenerationStatus) - FINAL_STATUSES)

_ALLOWED: dict[GenerationStatus, frozenset[GenerationStatus]] = {
    GenerationStatus.QUEUED: frozenset(
        {
            GenerationStatus.SUBMITTING,
            GenerationStatus.FAILED,
            GenerationStatus.CANCELED,
            GenerationStatus.EXPIRED,
        }
    ),
    GenerationStatus.SUBMITTING: frozenset(
        {
            GenerationStatus.PROCESSING,
            GenerationStatus.FAILED,
            GenerationStatus.CANCELED,
            GenerationStatus.EXPIRED,
        }
    ),
    GenerationStatus.PROCESSING: frozenset(
        {
            GenerationStatus.PROCESSING,
            GenerationStatus.SUCCEEDED,
            GenerationStatus.FAILED,
            GenerationStatus.CANCELED,
            GenerationStatus.EXPIRED,
        }
    ),
}


def can_transition(current: GenerationStatus, target: GenerationStatus) -> bool:
    return target in _ALLOWED.get(current, frozenset())


def check_transition(current: GenerationStatus, target: GenerationStatus) -> None:
    if not can_transition(current, target):
        raise InvalidState(f"A generation cannot go from {current.value} to {target.value}.")


def allowed_sources(target: GenerationStatus) -> frozenset[GenerationStatus]:
    """Every status from which `target` may be reached (used for conditional updates)."""
    return frozenset(src for src, targets in _ALLOWED.items() if target in targets)


@dataclass(frozen=True, slots=True)
class GenerationFailure:
    code: str
    message: str


@dataclass(slots=True)
class Generation:
    id: uuid.UUID
    user_id: uuid.UUID
    model_id: uuid.UUID
    prompt: str
    status: GenerationStatus
    created_at: datetime
    updated_at: datetime
    params: dict[str, Any] = field(default_factory=dict)
    board_id: uuid.UUID | None = None
    preset_id: uuid.UUID | None = None
    progress: float = 0.0
    error_code: str | None = None
    error_message: str | None = None
    reserved_credits: int = 0
    charged_credits: int = 0
    provider_task_id: str | None = None
    # The provider running it (the route whose submit succeeded); while SUBMITTING, the provider of
    # `uncertain_route`; None before either.
    provider: str | None = None
    # The route index of an earlier submit whose outcome is unknown (a read timeout, an unreadable
    # answer: a job may exist there). Later attempts go to that route only; cleared once one takes it.
    uncertain_route: int | None = None
    # That route's provider model: with `provider`, what finds the route again after the model's
    # routes were edited (never the index alone). None on rows from before it was recorded.
    uncertain_model: str | None = None
    # When the submit that set `uncertain_route` was sent: a lookup reads the provider's list back to it.
    # None on rows from before it was recorded.
    uncertain_since: datetime | None = None
    idempotency_key: str | None = None
    finished_at: datetime | None = None
    deadline_at: datetime | None = None
    submit_attempts: int = 0
    next_attempt_at: datetime | None = None
    lease_token: uuid.UUID | None = None
    # Outputs whose thumbnail is still being made: a watcher of the generation stays until 0.
    thumbnails_pending: int = 0
    input_chunk_ids: list[uuid.UUID] = field(default_factory=list)

    @property
    def is_final(self) -> bool:
        return self.status.is_final
