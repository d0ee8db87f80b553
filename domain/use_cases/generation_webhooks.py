"""A generation's own webhook (`GenerateInput.webhook`), stored before its start so no change can miss it.

The row is written in a transaction of its own just before the start (which is one atomic write
of its own, domain/repositories.py GenerationStarter): the worker's first change of the
generation finds it. A start that writes nothing (replayed, refused) leaves the row naming no
generation; it is deleted at once, and would otherwise go with the account.

The deliveries are signed with the user's default signing secret (rotateWebhookSigningSecret):
a generation asking for a webhook before the user has one is InvalidInput on `webhook`,
pointing there, so no message is ever signed with a secret its receiver was never shown.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from domain.errors import InvalidInput, Problems
from domain.repositories import UnitOfWork
from domain.use_cases.generate_request import WebhookRequest
from domain.use_cases.webhook_endpoints import check_destination
from domain.webhook_endpoints import GenerationWebhook, events_of
from domain.webhooks import WebhookDestinations

log = logging.getLogger("genhub.webhooks")

NO_SECRET = "needs your webhook signing secret first: call rotateWebhookSigningSecret once and keep what it returns"


async def attach(
    uow: UnitOfWork,
    *,
    user_id: uuid.UUID,
    generation_id: uuid.UUID,
    webhook: WebhookRequest,
    destinations: WebhookDestinations | None,
    at: datetime,
) -> None:
    if destinations is None:
        raise InvalidInput.single("webhook", "webhooks are not available on this server")
    problems = Problems()
    events = events_of(webhook.events, "webhook.events", problems)
    problems.raise_if_any()
    await check_destination(destinations, webhook.url, "webhook.url")
    async with uow:
        if not await uow.webhooks.has_default_secret(user_id):
            raise InvalidInput.single("webhook", NO_SECRET)
        await uow.webhooks.add_generation_webhook(
            GenerationWebhook(
                generation_id=generation_id, user_id=user_id, url=webhook.url, events=events, created_at=at
            )
        )
        await uow.commit()


async def detach(uow: UnitOfWork, generation_id: uuid.UUID) -> None:
    """The webhook of a start that wrote nothing; best effort (the row names no generation either way)."""
    try:
        async with uow:
            await uow.webhooks.delete_generation_webhooks([generation_id])
            await uow.commit()
    except Exception:
        log.exception("deleting the webhook of unstarted generation %s failed", generation_id)
