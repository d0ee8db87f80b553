"""The webhook tables of the unit tests' fake database (tests/unit/fake_database.py), mirroring
infrastructure/db/repositories/webhooks.py: claims and holds follow the database's clock."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from domain.pagination import Page, PageRequest
from domain.webhook_endpoints import GenerationWebhook, WebhookEndpoint, delivery_destination
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
from tests.unit.fake_pages import newest_first


class _Tx(Protocol):
    db: Any

    def get(self, table: str, key: Any) -> Any: ...
    def rows(self, table: str) -> dict[Any, Any]: ...
    def put(self, table: str, key: Any, value: Any) -> None: ...
    def delete(self, table: str, key: Any) -> bool: ...


class _Uow(Protocol):
    @property
    def tx(self) -> _Tx: ...


@dataclasses.dataclass(frozen=True, slots=True)
class SecretRecord:
    id: uuid.UUID
    user_id: uuid.UUID
    endpoint_id: uuid.UUID | None
    sealed: str
    created_at: datetime
    retires_at: datetime | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class DeliveryRecord:
    delivery: WebhookDelivery
    next_attempt_at: datetime
    claim_token: uuid.UUID | None
    claimed_until: datetime | None


class WebhookTables:
    """The committed rows (FakeDatabase holds one)."""

    def __init__(self) -> None:
        self.webhook_endpoints: dict[uuid.UUID, WebhookEndpoint] = {}
        self.webhook_secrets: dict[uuid.UUID, SecretRecord] = {}
        self.generation_webhooks: dict[uuid.UUID, GenerationWebhook] = {}
        self.webhook_messages: dict[str, WebhookMessage] = {}
        self.webhook_deliveries: dict[uuid.UUID, DeliveryRecord] = {}


def _target(endpoint_id: uuid.UUID | None) -> str:
    return str(endpoint_id) if endpoint_id else "generation"


class FakeWebhooks:
    def __init__(self, uow: _Uow) -> None:
        self._uow = uow

    @property
    def tx(self) -> _Tx:
        return self._uow.tx

    def _now(self) -> datetime:
        now: datetime = self.tx.db.clock.now()
        return now

    # ------------------------------------------------------------ endpoints
    async def endpoints_of(self, user_id: uuid.UUID) -> list[WebhookEndpoint]:
        found = [e for e in self.tx.rows("webhook_endpoints").values() if e.user_id == user_id]
        return sorted(found, key=lambda e: (e.created_at, e.id))

    async def endpoint(self, endpoint_id: uuid.UUID) -> WebhookEndpoint | None:
        found: WebhookEndpoint | None = self.tx.get("webhook_endpoints", endpoint_id)
        return found

    async def add_endpoint(self, endpoint: WebhookEndpoint) -> None:
        self.tx.put("webhook_endpoints", endpoint.id, endpoint)

    async def update_endpoint(self, endpoint: WebhookEndpoint) -> None:
        self.tx.put("webhook_endpoints", endpoint.id, endpoint)

    async def delete_endpoint(self, endpoint_id: uuid.UUID) -> bool:
        for key, record in self.tx.rows("webhook_deliveries").items():
            if record.delivery.endpoint_id == endpoint_id:
                self.tx.delete("webhook_deliveries", key)
        for key, secret in self.tx.rows("webhook_secrets").items():
            if secret.endpoint_id == endpoint_id:
                self.tx.delete("webhook_secrets", key)
        return self.tx.delete("webhook_endpoints", endpoint_id)

    async def stop_pending(self, endpoint_id: uuid.UUID, *, reason: str) -> int:
        stopped = 0
        for key, r in self.tx.rows("webhook_deliveries").items():
            if r.delivery.endpoint_id == endpoint_id and r.delivery.status is DeliveryStatus.PENDING:
                failed = dataclasses.replace(r.delivery, status=DeliveryStatus.FAILED, last_failure=reason)
                self.tx.put("webhook_deliveries", key, DeliveryRecord(failed, r.next_attempt_at, None, None))
                stopped += 1
        return stopped

    # ------------------------------------------------------------ secrets
    def _owned(self, user_id: uuid.UUID, endpoint_id: uuid.UUID | None) -> list[SecretRecord]:
        return [
            s for s in self.tx.rows("webhook_secrets").values() if s.user_id == user_id and s.endpoint_id == endpoint_id
        ]

    async def add_secret(self, *, user_id: uuid.UUID, endpoint_id: uuid.UUID | None, sealed: str, at: datetime) -> None:
        record = SecretRecord(uuid.uuid4(), user_id, endpoint_id, sealed, at)
        self.tx.put("webhook_secrets", record.id, record)

    async def retire_secrets(
        self, *, user_id: uuid.UUID, endpoint_id: uuid.UUID | None, at: datetime, overlap: timedelta
    ) -> datetime | None:
        until: datetime | None = None
        for s in self._owned(user_id, endpoint_id):
            if s.retires_at is None:
                until = at + overlap
                self.tx.put("webhook_secrets", s.id, dataclasses.replace(s, retires_at=until))
            elif s.retires_at > at:
                self.tx.put("webhook_secrets", s.id, dataclasses.replace(s, retires_at=at))
        return until

    async def has_default_secret(self, user_id: uuid.UUID) -> bool:
        return any(s.retires_at is None for s in self._owned(user_id, None))

    # ------------------------------------------------------------ generation webhooks
    async def add_generation_webhook(self, webhook: GenerationWebhook) -> None:
        self.tx.put("generation_webhooks", webhook.generation_id, webhook)

    async def delete_generation_webhooks(self, generation_ids: Sequence[uuid.UUID]) -> None:
        for generation_id in generation_ids:
            self.tx.delete("generation_webhooks", generation_id)

    # ------------------------------------------------------------ the outbox
    async def targets(self, user_id: uuid.UUID, generation_id: uuid.UUID) -> list[WebhookTarget]:
        found = [WebhookTarget(e.id, e.url, e.events) for e in await self.endpoints_of(user_id) if e.enabled]
        own = self.tx.get("generation_webhooks", generation_id)
        if own is not None and own.user_id == user_id:
            found.append(WebhookTarget(None, own.url, own.events))
        return found

    async def progress_since(self, generation_id: uuid.UUID, since: datetime) -> set[uuid.UUID | None]:
        return {
            r.delivery.endpoint_id
            for r in self.tx.rows("webhook_deliveries").values()
            if r.delivery.generation_id == generation_id
            and r.delivery.event is WebhookEvent.GENERATION_PROGRESS
            and r.delivery.created_at >= since
        }

    def _insert(self, d: NewDelivery, hold: timedelta) -> bool:
        if any(
            r.delivery.message_id == d.message_id
            and _target(r.delivery.endpoint_id) == _target(d.endpoint_id)
            and r.delivery.status is DeliveryStatus.PENDING
            for r in self.tx.rows("webhook_deliveries").values()
        ):
            return False
        view = WebhookDelivery(
            id=d.id,
            message_id=d.message_id,
            user_id=d.user_id,
            endpoint_id=d.endpoint_id,
            generation_id=d.generation_id,
            event=d.event,
            url=d.url,
            status=DeliveryStatus.PENDING,
            attempts=0,
            created_at=d.created_at,
        )
        now = self._now()
        self.tx.put("webhook_deliveries", d.id, DeliveryRecord(view, now, d.dispatch_token, now + hold))
        return True

    async def add_message(self, message: WebhookMessage, deliveries: Sequence[NewDelivery], *, hold: timedelta) -> None:
        self.tx.put("webhook_messages", message.id, message)
        for d in deliveries:
            if not self._insert(d, hold):
                raise AssertionError("a new message's delivery conflicts")

    # ------------------------------------------------------------ the log
    def _view(self, record: DeliveryRecord) -> WebhookDelivery:
        pending = record.delivery.status is DeliveryStatus.PENDING
        return dataclasses.replace(record.delivery, next_attempt_at=record.next_attempt_at if pending else None)

    async def deliveries(self, user_id: uuid.UUID, flt: DeliveryFilter, page: PageRequest) -> Page[WebhookDelivery]:
        found = [
            self._view(r)
            for r in self.tx.rows("webhook_deliveries").values()
            if r.delivery.user_id == user_id
            and (flt.endpoint_id is None or r.delivery.endpoint_id == flt.endpoint_id)
            and (flt.generation_id is None or r.delivery.generation_id == flt.generation_id)
            and (flt.status is None or r.delivery.status is flt.status)
        ]
        return newest_first(found, page)

    async def delivery(self, delivery_id: uuid.UUID) -> WebhookDelivery | None:
        record = self.tx.get("webhook_deliveries", delivery_id)
        return self._view(record) if record else None

    async def pending_of(self, message_id: str, endpoint_id: uuid.UUID | None) -> WebhookDelivery | None:
        for r in self.tx.rows("webhook_deliveries").values():
            d = r.delivery
            if d.message_id == message_id and d.endpoint_id == endpoint_id and d.status is DeliveryStatus.PENDING:
                return self._view(r)
        return None

    async def redeliver(self, delivery: NewDelivery, *, hold: timedelta) -> None:
        self._insert(delivery, hold)

    # ------------------------------------------------------------ workers
    def _free(self, r: DeliveryRecord, now: datetime) -> bool:
        return (r.claimed_until is None or r.claimed_until <= now) and r.next_attempt_at <= now

    async def dispatch_due(self, *, limit: int, hold: timedelta) -> list[Dispatch]:
        now = self._now()
        token = uuid.uuid4()
        due = sorted(
            (
                r
                for r in self.tx.rows("webhook_deliveries").values()
                if r.delivery.status is DeliveryStatus.PENDING and self._free(r, now)
            ),
            key=lambda r: r.next_attempt_at,
        )[:limit]
        for r in due:
            self.tx.put(
                "webhook_deliveries", r.delivery.id, dataclasses.replace(r, claim_token=token, claimed_until=now + hold)
            )
        return [Dispatch(r.delivery.id, token) for r in due]

    async def claim(
        self, delivery_id: uuid.UUID, *, token: uuid.UUID, new_token: uuid.UUID, lease: timedelta
    ) -> ClaimedDelivery | None:
        r: DeliveryRecord | None = self.tx.get("webhook_deliveries", delivery_id)
        now = self._now()
        if r is None or r.delivery.status is not DeliveryStatus.PENDING:
            return None
        if r.claim_token != token and not self._free(r, now):
            return None
        view = dataclasses.replace(r.delivery, attempts=r.delivery.attempts + 1, last_attempt_at=now)
        self.tx.put("webhook_deliveries", delivery_id, DeliveryRecord(view, r.next_attempt_at, new_token, now + lease))
        d = r.delivery
        endpoint = await self.endpoint(d.endpoint_id) if d.endpoint_id is not None else None
        url, stopped = delivery_destination(d.url, d.endpoint_id, endpoint)
        live = sorted(
            (s for s in self._owned(d.user_id, d.endpoint_id) if s.retires_at is None or s.retires_at > now),
            key=lambda s: s.created_at,
            reverse=True,
        )
        return ClaimedDelivery(
            id=delivery_id,
            message_id=d.message_id,
            body=self.tx.get("webhook_messages", d.message_id).body,
            url=url,
            attempts=view.attempts,
            stopped=stopped,
            sealed_secrets=[s.sealed for s in live],
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
        r: DeliveryRecord | None = self.tx.get("webhook_deliveries", delivery_id)
        if r is None or r.claim_token != token or r.delivery.status is not DeliveryStatus.PENDING:
            return False
        view = dataclasses.replace(r.delivery, status=status, last_status_code=status_code, last_failure=failure)
        due = self._now() + retry_after if retry_after is not None else r.next_attempt_at
        self.tx.put("webhook_deliveries", delivery_id, DeliveryRecord(view, due, None, None))
        return True

    async def delete_all_of(self, user_id: uuid.UUID) -> None:
        for table in (
            "webhook_deliveries",
            "webhook_messages",
            "generation_webhooks",
            "webhook_secrets",
            "webhook_endpoints",
        ):
            for key, row in self.tx.rows(table).items():
                owner = row.delivery.user_id if isinstance(row, DeliveryRecord) else row.user_id
                if owner == user_id:
                    self.tx.delete(table, key)

    async def purge(self, *, created_before: datetime, limit: int) -> int:
        deliveries = self.tx.rows("webhook_deliveries")
        old = [
            m.id
            for m in self.tx.rows("webhook_messages").values()
            if m.created_at < created_before
            and not any(
                r.delivery.message_id == m.id and r.delivery.status is DeliveryStatus.PENDING
                for r in deliveries.values()
            )
        ][:limit]
        for message_id in old:
            for key, r in deliveries.items():
                if r.delivery.message_id == message_id:
                    self.tx.delete("webhook_deliveries", key)
            self.tx.delete("webhook_messages", message_id)
        return len(old)
