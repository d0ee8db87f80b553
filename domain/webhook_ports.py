"""Ports of the webhook use cases: the webhook tables (on the unit of work) and the secrets' sealing."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from domain.pagination import Page, PageRequest
from domain.webhook_endpoints import GenerationWebhook, WebhookEndpoint
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


class SecretSealer(Protocol):
    """Keeps signing secrets recoverable but not readable at rest (we sign with them, so no hash will do)."""

    def seal(self, secret: str) -> str: ...

    def open(self, sealed: str) -> str:
        """The secret; ValueError when `sealed` was not sealed with this deployment's key (or was altered)."""
        ...


class WebhookRepository(Protocol):
    """Endpoints, secrets, generation webhooks, messages and deliveries. Claims and retry times are the
    database's clock (like the other outboxes)."""

    # ------------------------------------------------------------ endpoints
    async def endpoints_of(self, user_id: uuid.UUID) -> list[WebhookEndpoint]:
        """Oldest first."""
        ...

    async def endpoint(self, endpoint_id: uuid.UUID) -> WebhookEndpoint | None: ...
    async def add_endpoint(self, endpoint: WebhookEndpoint) -> None: ...
    async def update_endpoint(self, endpoint: WebhookEndpoint) -> None: ...
    async def delete_endpoint(self, endpoint_id: uuid.UUID) -> bool:
        """The endpoint with its secrets and its deliveries (pending or not)."""
        ...

    async def stop_pending(self, endpoint_id: uuid.UUID, *, reason: str) -> int:
        """Every pending delivery of the endpoint FAILED with `reason`: how many."""
        ...

    # ------------------------------------------------------------ secrets
    async def add_secret(
        self, *, user_id: uuid.UUID, endpoint_id: uuid.UUID | None, sealed: str, at: datetime
    ) -> None: ...

    async def retire_secrets(
        self, *, user_id: uuid.UUID, endpoint_id: uuid.UUID | None, at: datetime, overlap: timedelta
    ) -> datetime | None:
        """Before a new secret of the owner (an endpoint, or the user's default with None): the current one
        signs until `at + overlap` (returned; None when there was none); older ones stop at `at`."""
        ...

    async def has_default_secret(self, user_id: uuid.UUID) -> bool: ...

    # ------------------------------------------------------------ generation webhooks
    async def add_generation_webhook(self, webhook: GenerationWebhook) -> None: ...
    async def delete_generation_webhooks(self, generation_ids: Sequence[uuid.UUID]) -> None: ...

    # ------------------------------------------------------------ the outbox
    async def targets(self, user_id: uuid.UUID, generation_id: uuid.UUID) -> list[WebhookTarget]:
        """The user's enabled endpoints and the generation's own webhook, whatever their events."""
        ...

    async def progress_since(self, generation_id: uuid.UUID, since: datetime) -> set[uuid.UUID | None]:
        """Targets (endpoint ids; None: the generation's webhook) given a progress message of the generation
        created at or after `since`."""
        ...

    async def add_message(self, message: WebhookMessage, deliveries: Sequence[NewDelivery], *, hold: timedelta) -> None:
        """The message and its deliveries, due at once but held for `hold` for the task queued with each
        delivery's dispatch token (the sweep takes them after that, should the task be lost)."""
        ...

    # ------------------------------------------------------------ the log
    async def deliveries(self, user_id: uuid.UUID, flt: DeliveryFilter, page: PageRequest) -> Page[WebhookDelivery]:
        """The user's deliveries, newest first."""
        ...

    async def delivery(self, delivery_id: uuid.UUID) -> WebhookDelivery | None: ...
    async def pending_of(self, message_id: str, endpoint_id: uuid.UUID | None) -> WebhookDelivery | None:
        """A pending delivery of the message to that target, if there is one."""
        ...

    async def redeliver(self, delivery: NewDelivery, *, hold: timedelta) -> None:
        """A new delivery of an existing message (as `add_message` writes one)."""
        ...

    # ------------------------------------------------------------ workers
    async def dispatch_due(self, *, limit: int, hold: timedelta) -> list[Dispatch]:
        """Pending deliveries due and unheld at the database's now, each held `hold` under a new dispatch token."""
        ...

    async def claim(
        self, delivery_id: uuid.UUID, *, token: uuid.UUID, new_token: uuid.UUID, lease: timedelta
    ) -> ClaimedDelivery | None:
        """Take the pending delivery for an attempt under `new_token` for `lease`, counting it: when it is held
        under `token` (the dispatch's), or due and unheld. None otherwise (settled, or another claim runs)."""
        ...

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
        """The attempt under `token` is over: DELIVERED or FAILED for good, or (`retry_after`) pending, due again
        then. False when the claim was no longer `token`'s."""
        ...

    async def delete_all_of(self, user_id: uuid.UUID) -> None:
        """Every endpoint, secret, generation webhook, message and delivery of the user (a deleted account)."""
        ...

    async def purge(self, *, created_before: datetime, limit: int) -> int:
        """Messages created before then whose deliveries are all settled, with those deliveries: how many."""
        ...
