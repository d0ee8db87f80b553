"""One try of one provider route for a generation: what the submitter did and how it ended."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime


class AttemptOutcome(enum.StrEnum):
    SUBMITTED = "submitted"  # the provider took the job; the generation runs there
    FAILED = "failed"  # the provider refused or could not be reached
    SKIPPED = "skipped"  # not asked: its circuit is open, or the deadline left no time


@dataclass(frozen=True, slots=True)
class ProviderAttempt:
    generation_id: uuid.UUID
    submit_attempt: int  # the generation's submit_attempts when it ran (1-based)
    route_index: int
    provider: str
    started_at: datetime
    finished_at: datetime
    outcome: AttemptOutcome
    error_code: str | None = None
