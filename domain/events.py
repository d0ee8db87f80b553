"""Events published to a user's fan-out channel after a change is committed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from domain.generations import GenerationStatus


@dataclass(frozen=True, slots=True)
class GenerationChanged:
    generation_id: uuid.UUID
    user_id: uuid.UUID
    status: GenerationStatus
    previous_status: GenerationStatus | None
    progress: float
    at: datetime
    board_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class CreditsChanged:
    user_id: uuid.UUID
    balance: int
    reserved: int
    at: datetime


Event = GenerationChanged | CreditsChanged


def user_channel(user_id: uuid.UUID) -> str:
    return f"user:{user_id}"
