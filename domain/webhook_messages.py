"""Webhook messages and their deliveries: which change of a generation makes which message, and its payload.

A message is what a receiver gets (its id `msg_...` is the same on every attempt and
redelivery); a delivery is one message on its way to one target (an endpoint, or a
generation's own webhook), with its attempts. The payload follows Standard Webhooks' shape:
`{"type", "timestamp", "data"}`; `data` names the generation as the API does and tells what
changed, never its outputs' URLs (a receiver reads those through the API, with its rights).
"""

from __future__ import annotations

import enum
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.generations import Generation, GenerationStatus
from domain.webhooks import WebhookEvent

MESSAGE_PREFIX = "msg_"
STARTING = frozenset({GenerationStatus.QUEUED, GenerationStatus.SUBMITTING})


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"  # an attempt is due (or running)
    DELIVERED = "delivered"  # a receiver answered 2xx
    FAILED = "failed"  # every attempt failed, or its endpoint was disabled or deleted: given up


#: Why a delivery stopped without an attempt of ours failing (stored as its last failure).
ENDPOINT_DISABLED = "ENDPOINT_DISABLED"
SECRET_UNREADABLE = "SECRET_UNREADABLE"
GAVE_UP = "GAVE_UP"  # the attempt's worker stopped after the last attempt: nothing more is tried
#: Every reason stored as a delivery's last failure besides an attempt's DeliveryFailure.
SETTLE_FAILURES = (ENDPOINT_DISABLED, SECRET_UNREADABLE, GAVE_UP)


def event_for(previous: GenerationStatus | None, generation: Generation) -> WebhookEvent | None:
    """The event type a committed change of `generation` (from `previous`) is, if any.

    Started: the provider took it (SUBMITTING -> PROCESSING); progress: a PROCESSING one moved on;
    completed: it reached a final status (succeeded, failed, canceled, expired).
    """
    status = generation.status
    if status.is_final:
        return WebhookEvent.GENERATION_COMPLETED if previous is None or not previous.is_final else None
    if status is GenerationStatus.PROCESSING:
        if previous in STARTING:
            return WebhookEvent.GENERATION_STARTED
        if previous is GenerationStatus.PROCESSING:
            return WebhookEvent.GENERATION_PROGRESS
    return None


def new_message_id() -> str:
    return MESSAGE_PREFIX + uuid.uuid4().hex


def payload(
    event: WebhookEvent,
    generation: Generation,
    previous: GenerationStatus | None,
    at: datetime,
    output_ids: Sequence[uuid.UUID] = (),
) -> dict[str, Any]:
    """The message's JSON: statuses are the API's enum names, ids the API's ids."""
    data: dict[str, Any] = {
        "id": str(generation.id),
        "status": generation.status.name,
        "previousStatus": previous.name if previous is not None else None,
        "progress": generation.progress,
        "modelId": str(generation.model_id),
        "boardId": str(generation.board_id) if generation.board_id else None,
    }
    if event is WebhookEvent.GENERATION_COMPLETED:
        data["errorCode"] = generation.error_code
        data["outputIds"] = [str(i) for i in output_ids]
        data["finishedAt"] = generation.finished_at.isoformat() if generation.finished_at else at.isoformat()
    return {"type": event.value, "timestamp": at.isoformat(), "data": data}


def body_of(document: dict[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """Where a user's messages may go: an endpoint (`endpoint_id`) or a generation's own webhook (None)."""

    endpoint_id: uuid.UUID | None
    url: str
    events: frozenset[WebhookEvent]


@dataclass(frozen=True, slots=True)
class WebhookMessage:
    id: str
    user_id: uuid.UUID
    generation_id: uuid.UUID | None
    event: WebhookEvent
    body: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class NewDelivery:
    """A delivery to write with its message; `dispatch_token` lets the task queued for it claim it first."""

    id: uuid.UUID
    message_id: str
    user_id: uuid.UUID
    endpoint_id: uuid.UUID | None
    generation_id: uuid.UUID | None
    event: WebhookEvent
    url: str
    dispatch_token: uuid.UUID
    created_at: datetime


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One delivery as the delivery log shows it."""

    id: uuid.UUID
    message_id: str
    user_id: uuid.UUID
    endpoint_id: uuid.UUID | None
    generation_id: uuid.UUID | None
    event: WebhookEvent
    url: str
    status: DeliveryStatus
    attempts: int
    created_at: datetime
    last_status_code: int | None = None
    last_failure: str | None = None
    last_attempt_at: datetime | None = None
    next_attempt_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class DeliveryFilter:
    endpoint_id: uuid.UUID | None = None
    generation_id: uuid.UUID | None = None
    status: DeliveryStatus | None = None


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """A delivery a worker now attempts (`attempts` counts this one), with what it needs to send it.

    `url` is the endpoint's current one (it may have changed since the message); `stopped` says
    the endpoint was disabled or deleted meanwhile; `sealed_secrets` are the live signing secrets,
    newest first, still sealed.
    """

    id: uuid.UUID
    message_id: str
    body: str
    url: str
    attempts: int
    stopped: bool
    sealed_secrets: Sequence[str]


@dataclass(frozen=True, slots=True)
class Dispatch:
    """A delivery ready to be queued: its id and the token its task claims it with."""

    delivery_id: uuid.UUID
    token: uuid.UUID
