"""The provider routes tried for generations (provider_attempts), and what each provider runs now."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, or_, select, update

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

    async def record_skips(self, attempts: Sequence[ProviderAttempt]) -> datetime:
        first = attempts[0]
        stmt = (
            select(PROVIDER_ATTEMPTS)
            .where(a.generation_id == first.generation_id)
            .order_by(a.started_at.desc(), a.submit_attempt.desc(), a.route_index.desc())
            .limit(len(attempts))
        )
        previous = list(reversed(await self.rows(stmt)))
        if [_skip_key(r.route_index, r.provider, r.outcome, r.error_code) for r in previous] != [
            _skip_key(t.route_index, t.provider, t.outcome.value, t.error_code) for t in attempts
        ]:
            await self.record_attempts(attempts)
            return first.started_at
        await self.core_execute(
            update(PROVIDER_ATTEMPTS).where(a.id.in_([r.id for r in previous])),
            {"finished_at": max(t.finished_at for t in attempts)},
        )
        return aware(previous[0].started_at)

    async def attempts_of(
        self, generation_ids: Sequence[uuid.UUID], *, latest: int | None = None
    ) -> dict[uuid.UUID, list[ProviderAttempt]]:
        found: dict[uuid.UUID, list[ProviderAttempt]] = defaultdict(list)
        if not generation_ids:
            return found
        chosen = a.generation_id.in_(set(generation_ids))
        columns: Any = a
        if latest is None:
            stmt = select(PROVIDER_ATTEMPTS).where(chosen)
        else:
            newest_first = (a.started_at.desc(), a.submit_attempt.desc(), a.route_index.desc())
            rank = func.row_number().over(partition_by=a.generation_id, order_by=newest_first).label("rank")
            ranked = select(PROVIDER_ATTEMPTS, rank).where(chosen).subquery()
            columns = ranked.c
            stmt = select(ranked).where(ranked.c.rank <= latest)
        stmt = stmt.order_by(columns.generation_id, columns.started_at, columns.submit_attempt, columns.route_index)
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


def _skip_key(route_index: int, provider: str, outcome: str, code: str | None) -> tuple[int, str, str, str | None]:
    return route_index, provider, outcome, code
