"""The webhook outbox: messages, their deliveries, the delivery log, and workers' claims on deliveries.

Claims, holds and retry times are the database's clock (`_now`), as in the other outboxes, so
workers whose clocks differ never attempt one delivery at once; `FOR UPDATE SKIP LOCKED` lets
several sweeps run side by side. Endpoints and secrets are inherited (`webhook_endpoints`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Uuid, delete, exists, literal, or_, select, text, union_all, update

from domain.pagination import Page, PageRequest
from domain.webhook_endpoints import delivery_destination
from domain.webhook_messages import (
    ClaimedDelivery,
    DeliveryFilter,
    DeliveryStatus,
    Dispatch,
    NewDelivery,
    WebhookDelivery,
    WebhookMessage,
    WebhookTarget,
)
from domain.webhooks import WebhookEvent
from infrastructure.db.models import GENERATION_TARGET, PENDING_DELIVERY_PREDICATE
from infrastructure.db.repositories.base import AnyRow, aware, aware_opt, keyset
from infrastructure.db.repositories.webhook_endpoints import E, G, SqlWebhookEndpoints, events_from
from infrastructure.db.tables import (
    GENERATION_WEBHOOKS,
    WEBHOOK_DELIVERIES,
    WEBHOOK_ENDPOINTS,
    WEBHOOK_MESSAGES,
    WEBHOOK_SECRETS,
)

D = WEBHOOK_DELIVERIES.c
M = WEBHOOK_MESSAGES.c
PENDING = DeliveryStatus.PENDING.value


def target_key(endpoint_id: uuid.UUID | None) -> str:
    return str(endpoint_id) if endpoint_id is not None else GENERATION_TARGET


def delivery_of(row: AnyRow) -> WebhookDelivery:
    return WebhookDelivery(
        id=row.id,
        message_id=row.message_id,
        user_id=row.user_id,
        endpoint_id=row.endpoint_id,
        generation_id=row.generation_id,
        event=WebhookEvent(row.event),
        url=row.url,
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        created_at=aware(row.created_at),
        last_status_code=row.last_status_code,
        last_failure=row.last_failure,
        last_attempt_at=aware_opt(row.last_attempt_at),
        next_attempt_at=aware(row.next_attempt_at) if row.status == PENDING else None,
    )


class SqlWebhookRepository(SqlWebhookEndpoints):
    async def stop_pending(self, endpoint_id: uuid.UUID, *, reason: str) -> int:
        stmt = (
            update(WEBHOOK_DELIVERIES)
            .where(D.endpoint_id == endpoint_id, D.status == PENDING)
            .values(status=DeliveryStatus.FAILED.value, last_failure=reason, claim_token=None, claimed_until=None)
        )
        result = await self.session.execute(stmt)
        return int(getattr(result, "rowcount", 0) or 0)

    async def targets(self, user_id: uuid.UUID, generation_id: uuid.UUID) -> list[WebhookTarget]:
        stmt = union_all(
            select(E.id.label("endpoint_id"), E.url, E.events).where(E.user_id == user_id, E.enabled.is_(True)),
            select(literal(None, Uuid()).label("endpoint_id"), G.url, G.events).where(
                G.generation_id == generation_id, G.user_id == user_id
            ),
        )
        return [WebhookTarget(r.endpoint_id, r.url, events_from(r.events)) for r in await self.rows(stmt)]

    async def progress_since(self, generation_id: uuid.UUID, since: datetime) -> set[uuid.UUID | None]:
        stmt = (
            select(D.endpoint_id, D.target_key)
            .where(
                D.generation_id == generation_id,
                D.event == WebhookEvent.GENERATION_PROGRESS.value,
                D.created_at >= since,
            )
            .distinct()
        )
        return {r.endpoint_id if r.target_key != GENERATION_TARGET else None for r in await self.rows(stmt)}

    async def _insert_delivery(self, delivery: NewDelivery, *, hold: timedelta, replay_safe: bool) -> bool:
        stmt = self.insert(WEBHOOK_DELIVERIES).values(
            id=delivery.id,
            message_id=delivery.message_id,
            user_id=delivery.user_id,
            endpoint_id=delivery.endpoint_id,
            target_key=target_key(delivery.endpoint_id),
            generation_id=delivery.generation_id,
            event=delivery.event.value,
            url=delivery.url,
            status=PENDING,
            attempts=0,
            next_attempt_at=self._now(),
            claim_token=delivery.dispatch_token,
            claimed_until=self._now(hold),
            created_at=delivery.created_at,
        )
        if replay_safe:
            stmt = stmt.on_conflict_do_nothing(
                index_elements=["message_id", "target_key"], index_where=text(PENDING_DELIVERY_PREDICATE)
            )
        result = await self.session.execute(stmt.returning(D.id))
        return result.first() is not None

    async def add_message(self, message: WebhookMessage, deliveries: Sequence[NewDelivery], *, hold: timedelta) -> None:
        await self.session.execute(
            WEBHOOK_MESSAGES.insert().values(
                id=message.id,
                user_id=message.user_id,
                generation_id=message.generation_id,
                event=message.event.value,
                body=message.body,
                created_at=message.created_at,
            )
        )
        for delivery in deliveries:
            await self._insert_delivery(delivery, hold=hold, replay_safe=False)

    async def deliveries(self, user_id: uuid.UUID, flt: DeliveryFilter, page: PageRequest) -> Page[WebhookDelivery]:
        stmt = select(WEBHOOK_DELIVERIES).where(D.user_id == user_id)
        if flt.endpoint_id is not None:
            stmt = stmt.where(D.endpoint_id == flt.endpoint_id)
        if flt.generation_id is not None:
            stmt = stmt.where(D.generation_id == flt.generation_id)
        if flt.status is not None:
            stmt = stmt.where(D.status == flt.status.value)
        rows = await self.rows(keyset(stmt, page, D.created_at, D.id))
        return page.cut([delivery_of(r) for r in rows])

    async def delivery(self, delivery_id: uuid.UUID) -> WebhookDelivery | None:
        row = await self.row(select(WEBHOOK_DELIVERIES).where(D.id == delivery_id))
        return delivery_of(row) if row else None

    async def pending_of(self, message_id: str, endpoint_id: uuid.UUID | None) -> WebhookDelivery | None:
        stmt = select(WEBHOOK_DELIVERIES).where(
            D.message_id == message_id, D.target_key == target_key(endpoint_id), D.status == PENDING
        )
        row = await self.row(stmt)
        return delivery_of(row) if row else None

    async def redeliver(self, delivery: NewDelivery, *, hold: timedelta) -> None:
        await self._insert_delivery(delivery, hold=hold, replay_safe=True)

    async def dispatch_due(self, *, limit: int, hold: timedelta) -> list[Dispatch]:
        now = self._now()
        due = (
            select(D.id)
            .where(
                D.status == PENDING,
                D.next_attempt_at <= now,
                or_(D.claimed_until.is_(None), D.claimed_until <= now),
            )
            .order_by(D.next_attempt_at)
            .limit(limit)
        )
        if self.dialect == "postgresql":
            due = due.with_for_update(skip_locked=True)
        token = uuid.uuid4()
        stmt = (
            update(WEBHOOK_DELIVERIES)
            .where(D.id.in_(due.scalar_subquery()))
            .values(claim_token=token, claimed_until=self._now(hold))
            .returning(D.id)
        )
        return [Dispatch(r.id, token) for r in (await self.session.execute(stmt)).all()]

    async def claim(
        self, delivery_id: uuid.UUID, *, token: uuid.UUID, new_token: uuid.UUID, lease: timedelta
    ) -> ClaimedDelivery | None:
        now = self._now()
        free = (D.claimed_until.is_(None) | (D.claimed_until <= now)) & (D.next_attempt_at <= now)
        stmt = (
            update(WEBHOOK_DELIVERIES)
            .where(D.id == delivery_id, D.status == PENDING, or_(D.claim_token == token, free))
            .values(
                claim_token=new_token,
                claimed_until=self._now(lease),
                attempts=D.attempts + 1,
                last_attempt_at=self._now(),
            )
            .returning(D.id, D.message_id, D.user_id, D.endpoint_id, D.url, D.attempts)
        )
        row = (await self.session.execute(stmt)).first()
        if row is None:
            return None
        body = (await self.scalars(select(M.body).where(M.id == row.message_id)))[0]
        endpoint = await self.endpoint(row.endpoint_id) if row.endpoint_id is not None else None
        url, stopped = delivery_destination(row.url, row.endpoint_id, endpoint)
        return ClaimedDelivery(
            id=row.id,
            message_id=row.message_id,
            body=body,
            url=url,
            attempts=row.attempts,
            stopped=stopped,
            sealed_secrets=await self.live_secrets(row.user_id, row.endpoint_id),
        )

    async def settle(
        self,
        delivery_id: uuid.UUID,
        *,
        token: uuid.UUID,
        status: DeliveryStatus,
        status_code: int | None,
        failure: str | None,
        retry_after: timedelta | None,
    ) -> bool:
        values: dict[str, object] = {
            "status": status.value,
            "last_status_code": status_code,
            "last_failure": failure,
            "claim_token": None,
            "claimed_until": None,
        }
        if retry_after is not None:
            values["next_attempt_at"] = self._now(retry_after)
        stmt = (
            update(WEBHOOK_DELIVERIES)
            .where(D.id == delivery_id, D.claim_token == token, D.status == PENDING)
            .values(**values)
            .returning(D.id)
        )
        return (await self.session.execute(stmt)).first() is not None

    async def delete_all_of(self, user_id: uuid.UUID) -> None:
        for table in (WEBHOOK_DELIVERIES, WEBHOOK_MESSAGES, GENERATION_WEBHOOKS, WEBHOOK_SECRETS, WEBHOOK_ENDPOINTS):
            await self.session.execute(delete(table).where(table.c.user_id == user_id))

    async def purge(self, *, created_before: datetime, limit: int) -> int:
        pending = exists().where(D.message_id == M.id, D.status == PENDING)
        old = select(M.id).where(M.created_at < created_before, ~pending).limit(limit)
        ids = list(await self.scalars(old))
        if not ids:
            return 0
        await self.session.execute(delete(WEBHOOK_DELIVERIES).where(D.message_id.in_(ids)))
        await self.session.execute(delete(WEBHOOK_MESSAGES).where(M.id.in_(ids)))
        return len(ids)


__all__ = ["SqlWebhookRepository", "WEBHOOK_SECRETS", "WEBHOOK_ENDPOINTS"]
