"""Webhook endpoints, their sealed secrets, and generations' own webhooks."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, DateTime, Interval, and_, delete, exists, func, literal, select, update

from domain.webhook_endpoints import GenerationWebhook, WebhookEndpoint
from domain.webhooks import WebhookEvent
from infrastructure.db.repositories.base import AnyRow, SqlRepository, aware
from infrastructure.db.tables import GENERATION_WEBHOOKS, WEBHOOK_DELIVERIES, WEBHOOK_ENDPOINTS, WEBHOOK_SECRETS

E = WEBHOOK_ENDPOINTS.c
S = WEBHOOK_SECRETS.c
G = GENERATION_WEBHOOKS.c
TIMESTAMP = DateTime(timezone=True)


def events_text(events: frozenset[WebhookEvent]) -> str:
    return ",".join(sorted(e.value for e in events))


def events_from(text: str) -> frozenset[WebhookEvent]:
    found: set[WebhookEvent] = set()
    for part in text.split(","):
        try:
            found.add(WebhookEvent(part))
        except ValueError:
            continue  # a type a newer release stored: this one sends none of it
    return frozenset(found)


def endpoint_of(row: AnyRow) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=row.id,
        user_id=row.user_id,
        url=row.url,
        events=events_from(row.events),
        description=row.description,
        enabled=bool(row.enabled),
        created_at=aware(row.created_at),
        updated_at=aware(row.updated_at),
    )


class SqlWebhookEndpoints(SqlRepository):
    def _now(self, after: timedelta = timedelta(0)) -> ColumnElement[datetime]:
        """The database's clock (PostgreSQL); SQLite serves one process: its clock is then ours."""
        if self.dialect != "postgresql":
            return literal(datetime.now(UTC) + after, TIMESTAMP)
        now: ColumnElement[datetime] = func.clock_timestamp(type_=TIMESTAMP)
        return now + literal(after, Interval()) if after else now

    async def endpoints_of(self, user_id: uuid.UUID) -> list[WebhookEndpoint]:
        stmt = select(WEBHOOK_ENDPOINTS).where(E.user_id == user_id).order_by(E.created_at, E.id)
        return [endpoint_of(r) for r in await self.rows(stmt)]

    async def endpoint(self, endpoint_id: uuid.UUID) -> WebhookEndpoint | None:
        row = await self.row(select(WEBHOOK_ENDPOINTS).where(E.id == endpoint_id))
        return endpoint_of(row) if row else None

    async def add_endpoint(self, endpoint: WebhookEndpoint) -> None:
        await self.session.execute(
            WEBHOOK_ENDPOINTS.insert().values(
                id=endpoint.id,
                user_id=endpoint.user_id,
                url=endpoint.url,
                events=events_text(endpoint.events),
                description=endpoint.description,
                enabled=endpoint.enabled,
                created_at=endpoint.created_at,
                updated_at=endpoint.updated_at,
            )
        )

    async def update_endpoint(self, endpoint: WebhookEndpoint) -> None:
        await self.session.execute(
            update(WEBHOOK_ENDPOINTS)
            .where(E.id == endpoint.id)
            .values(
                url=endpoint.url,
                events=events_text(endpoint.events),
                description=endpoint.description,
                enabled=endpoint.enabled,
                updated_at=endpoint.updated_at,
            )
        )

    async def delete_endpoint(self, endpoint_id: uuid.UUID) -> bool:
        await self.session.execute(delete(WEBHOOK_DELIVERIES).where(WEBHOOK_DELIVERIES.c.endpoint_id == endpoint_id))
        await self.session.execute(delete(WEBHOOK_SECRETS).where(S.endpoint_id == endpoint_id))
        result = await self.session.execute(delete(WEBHOOK_ENDPOINTS).where(E.id == endpoint_id))
        return bool(getattr(result, "rowcount", 0))

    # ------------------------------------------------------------ secrets

    @staticmethod
    def _owner(user_id: uuid.UUID, endpoint_id: uuid.UUID | None) -> ColumnElement[bool]:
        if endpoint_id is None:
            return and_(S.user_id == user_id, S.endpoint_id.is_(None))
        return and_(S.user_id == user_id, S.endpoint_id == endpoint_id)

    async def add_secret(self, *, user_id: uuid.UUID, endpoint_id: uuid.UUID | None, sealed: str, at: datetime) -> None:
        await self.session.execute(
            WEBHOOK_SECRETS.insert().values(
                id=uuid.uuid4(), user_id=user_id, endpoint_id=endpoint_id, sealed=sealed, created_at=at
            )
        )

    async def retire_secrets(
        self, *, user_id: uuid.UUID, endpoint_id: uuid.UUID | None, at: datetime, overlap: timedelta
    ) -> datetime | None:
        owner = self._owner(user_id, endpoint_id)
        await self.session.execute(
            update(WEBHOOK_SECRETS).where(owner, S.retires_at.is_not(None), S.retires_at > at).values(retires_at=at)
        )
        until = at + overlap
        stmt = update(WEBHOOK_SECRETS).where(owner, S.retires_at.is_(None)).values(retires_at=until).returning(S.id)
        retired = (await self.session.execute(stmt)).all()
        return until if retired else None

    async def has_default_secret(self, user_id: uuid.UUID) -> bool:
        stmt = select(exists().where(self._owner(user_id, None), S.retires_at.is_(None)))
        return bool((await self.scalars(stmt))[0])

    async def live_secrets(self, user_id: uuid.UUID, endpoint_id: uuid.UUID | None) -> list[str]:
        """The owner's secrets that sign now (the database's clock), newest first."""
        stmt = (
            select(S.sealed)
            .where(self._owner(user_id, endpoint_id), (S.retires_at.is_(None)) | (S.retires_at > self._now()))
            .order_by(S.created_at.desc())
            .limit(4)
        )
        return list(await self.scalars(stmt))

    # ------------------------------------------------------------ generation webhooks

    async def add_generation_webhook(self, webhook: GenerationWebhook) -> None:
        await self.session.execute(
            GENERATION_WEBHOOKS.insert().values(
                generation_id=webhook.generation_id,
                user_id=webhook.user_id,
                url=webhook.url,
                events=events_text(webhook.events),
                created_at=webhook.created_at,
            )
        )

    async def delete_generation_webhooks(self, generation_ids: Sequence[uuid.UUID]) -> None:
        if generation_ids:
            await self.session.execute(delete(GENERATION_WEBHOOKS).where(G.generation_id.in_(list(generation_ids))))
