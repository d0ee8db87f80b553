"""Watching: the live streams of one generation, of all the viewer's generations, of the balance."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import datetime

from domain.credits import CreditBalance
from domain.ports import Clock
from domain.repositories import UnitOfWorkFactory
from domain.use_cases import watching
from domain.use_cases.watching import ChangeFeed, GenerationUpdate
from domain.users import Principal


@dataclass(frozen=True, slots=True)
class Watching:
    """`expires_at`: when the caller's access token expires (the stream ends with Unauthenticated)."""

    uow: UnitOfWorkFactory
    feed: ChangeFeed
    clock: Clock

    def generation(
        self, principal: Principal, generation_id: uuid.UUID, expires_at: datetime | None
    ) -> AsyncGenerator[GenerationUpdate, None]:
        return watching.watch_generation(
            principal=principal,
            generation_id=generation_id,
            uow=self.uow,
            feed=self.feed,
            clock=self.clock,
            expires_at=expires_at,
        )

    def my_generations(
        self, principal: Principal, expires_at: datetime | None
    ) -> AsyncGenerator[GenerationUpdate, None]:
        return watching.watch_my_generations(
            principal=principal, feed=self.feed, clock=self.clock, expires_at=expires_at
        )

    def credits(self, principal: Principal, expires_at: datetime | None) -> AsyncGenerator[CreditBalance, None]:
        return watching.watch_credits(principal=principal, feed=self.feed, clock=self.clock, expires_at=expires_at)

    def seconds_left(self, expires_at: datetime) -> float:
        """Until `expires_at` on this process's clock (negative: already past)."""
        return (expires_at - self.clock.now()).total_seconds()
