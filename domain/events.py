"""Events published to a user's fan-out channel after a change is committed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from domain.generations import Generation, GenerationStatus


@dataclass(frozen=True, slots=True)
class GenerationChanged:
    """A committed change of one generation.

    ``generation`` is the generation as the publisher committed it (the snapshot a
    subscriber shows); the other fields are its identity and the transition, so a
    subscriber can filter and order events without looking at it. It is None only in
    events of publishers older than snapshots, or whose snapshot was too large for the
    wire (see ``infrastructure.pubsub.codec``).
    """

    generation_id: uuid.UUID
    user_id: uuid.UUID
    status: GenerationStatus
    previous_status: GenerationStatus | None
    progress: float
    at: datetime
    board_id: uuid.UUID | None = None
    generation: Generation | None = None
    # Outputs whose thumbnail is still being made (0 from publishers older than thumbnails).
    thumbnails_pending: int = 0

    def __post_init__(self) -> None:
        g = self.generation
        if g is not None and (g.id, g.user_id, g.status, g.progress, g.board_id, g.thumbnails_pending) != (
            self.generation_id,
            self.user_id,
            self.status,
            self.progress,
            self.board_id,
            self.thumbnails_pending,
        ):
            raise ValueError("a GenerationChanged must describe the generation it carries")

    @classmethod
    def of(cls, generation: Generation, previous: GenerationStatus | None, at: datetime) -> GenerationChanged:
        """The event announcing ``generation`` as just committed, coming from ``previous``."""
        return cls(
            generation_id=generation.id,
            user_id=generation.user_id,
            status=generation.status,
            previous_status=previous,
            progress=generation.progress,
            at=at,
            board_id=generation.board_id,
            generation=generation,
            thumbnails_pending=generation.thumbnails_pending,
        )


@dataclass(frozen=True, slots=True)
class CreditsChanged:
    user_id: uuid.UUID
    balance: int
    reserved: int
    at: datetime


Event = GenerationChanged | CreditsChanged


def user_channel(user_id: uuid.UUID) -> str:
    return f"user:{user_id}"
