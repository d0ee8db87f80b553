"""The provider routes tried for generations (provider_attempts), and what each provider runs now."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import func, insert, or_, select

from domain.generations import Generation, GenerationStatus
from domain.provider_attempts import AttemptOutcome, ProviderAttempt
from infrastructure.db.repositories.base import SqlRepository, aware
from infrastructure.db.repositories.generation_rows import generation_of
from infrastructure.db.tables import GENERATIONS, PROVIDER_ATTEMPTS

a = PROVIDER_ATTEMPTS.c


class SqlGenerationProviderAttempts(SqlRepository):
    async def record_attempts(self, attempts: Sequence[ProviderAttempt]) -> None:
        if not attempts:
            return
        await self.core_execute(
            insert(PROVIDER_ATTEMPTS),
            [  # type: ignore[arg-type]  # executemany
                {
                    "id": uuid.uuid4(),
                    "generation_id": t.generation_id,
                    "submit_attempt": t.submit_attempt,
                    "route_index": t.route_index,
                    "provider": t.provider,
                    "started_at": t.started_at,
                    "finished_at": t.finished_at,
                    "outcome": t.outcome.value,
                    "error_code": t.error_code,
                }
                for t in attempts
            ],
        )

    async def attempts_of(self, generation_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[ProviderAttempt]]:
        found: dict[uuid.UUID, list[ProviderAttempt]] = defaultdict(list)
        if not generation_ids:
            return found
        stmt = (
            select(PROVIDER_ATTEMPTS)
            .where(a.generation_id.in_(set(generation_ids)))
            .order_by(a.generation_id, a.started_at, a.submit_attempt, a.route_index)
        )
        for row in await self.rows(stmt):
            found[row.generation_id].append(
                ProviderAttempt(
                    generation_id=row.generation_id,
                    submit_attempt=row.submit_attempt,
                    route_index=row.route_index,
                    provider=row.provider,
                    started_at=aware(row.started_at),
                    finished_at=aware(row.finished_at),
                    outcome=AttemptOutcome(row.outcome),
                    error_code=row.error_code,
                )
            )
        return found

    async def running_by_provider(self) -> dict[str, int]:
        """PROCESSING generations per provider (those submitted before routes existed are left out)."""
        g = GENERATIONS.c
        stmt = (
            select(g.provider, func.count())
            .where(g.status == GenerationStatus.PROCESSING.value, g.provider.is_not(None))
            .group_by(g.provider)
        )
        return {row[0]: int(row[1]) for row in await self.rows(stmt)}

    async def on_provider(self, provider: str, ids: Sequence[uuid.UUID]) -> list[Generation]:
        g = GENERATIONS.c
        active = [GenerationStatus.PROCESSING.value, GenerationStatus.SUBMITTING.value]
        naming = (g.provider == provider) & g.status.in_(active)
        stmt = select(GENERATIONS).where(or_(naming, g.id.in_(set(ids))) if ids else naming)
        return [generation_of(row) for row in await self.rows(stmt)]
