"""GraphQL types of the webhooks area."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from domain import webhook_endpoints as dw
from domain import webhook_messages as dm
from domain import webhooks as dh
from domain.cursors import CursorCodec
from domain.pagination import Page
from graph.common.connections import cursor_of, page_info
from graph.common.inputs import scalar_fields_input
from graph.common.node import Node
from graph.common.types import InvalidInput, InvalidState, NotFound, PageInfo, QuotaExceeded, RateLimited

strawberry.enum(
    dh.WebhookEvent,
    name="WebhookEventType",
    description="What a webhook message is about; the message's `type` is `generation.started`, "
    "`generation.progress` or `generation.completed`.",
)
WebhookEventType = dh.WebhookEvent
strawberry.enum(
    dm.DeliveryStatus,
    name="WebhookDeliveryStatus",
    description="PENDING while an attempt is due or running; DELIVERED after a 2xx answer; FAILED once every "
    "attempt failed or its endpoint was disabled.",
)
WebhookDeliveryStatus = dm.DeliveryStatus

#: Every code `lastFailure` may hold, named from the domain's lists (a new one cannot go unlisted).
LAST_FAILURE_DESCRIPTION = "Why the last attempt failed, or the delivery stopped: " + ", ".join(
    [*(f.value for f in dh.DeliveryFailure), *dm.SETTLE_FAILURES]
)


@strawberry.type(description="An account-level webhook endpoint: it receives the chosen events of every generation.")
class WebhookEndpoint(Node):
    url: str
    events: list[WebhookEventType] = strawberry.field(description="The event types it receives.")
    description: str
    enabled: bool = strawberry.field(description="A disabled endpoint receives nothing; its pending deliveries stop.")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_domain(cls, endpoint: dw.WebhookEndpoint) -> WebhookEndpoint:
        return cls(
            id=strawberry.ID(str(endpoint.id)),
            url=endpoint.url,
            events=sorted(endpoint.events, key=list(dh.WebhookEvent).index),
            description=endpoint.description,
            enabled=endpoint.enabled,
            created_at=endpoint.created_at,
            updated_at=endpoint.updated_at,
        )


@strawberry.type(description="One webhook message on its way to one endpoint (or a generation's own webhook).")
class WebhookDelivery:
    id: strawberry.ID
    message_id: str = strawberry.field(
        description="The `webhook-id` header: the same on every attempt and redelivery of the message."
    )
    event_type: WebhookEventType
    url: str = strawberry.field(description="Where the message was addressed when it was made.")
    endpoint_id: strawberry.ID | None = strawberry.field(description="Null for a generation's own webhook.")
    generation_id: strawberry.ID | None
    status: WebhookDeliveryStatus
    attempts: int = strawberry.field(description="Attempts made so far.")
    last_status_code: int | None = strawberry.field(description="The receiver's HTTP status of the last attempt.")
    last_failure: str | None = strawberry.field(description=LAST_FAILURE_DESCRIPTION)
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None = strawberry.field(description="When the next attempt is due (PENDING only).")
    created_at: datetime

    @classmethod
    def from_domain(cls, d: dm.WebhookDelivery) -> WebhookDelivery:
        return cls(
            id=strawberry.ID(str(d.id)),
            message_id=d.message_id,
            event_type=d.event,
            url=d.url,
            endpoint_id=strawberry.ID(str(d.endpoint_id)) if d.endpoint_id else None,
            generation_id=strawberry.ID(str(d.generation_id)) if d.generation_id else None,
            status=d.status,
            attempts=d.attempts,
            last_status_code=d.last_status_code,
            last_failure=d.last_failure,
            last_attempt_at=d.last_attempt_at,
            next_attempt_at=d.next_attempt_at,
            created_at=d.created_at,
        )


@strawberry.type
class WebhookDeliveryEdge:
    node: WebhookDelivery
    cursor: str


@strawberry.type(description="A page of the viewer's webhook deliveries, newest first.")
class WebhookDeliveryConnection:
    edges: list[WebhookDeliveryEdge]
    page_info: PageInfo

    @classmethod
    def from_page(cls, page: Page[dm.WebhookDelivery], cursors: CursorCodec) -> WebhookDeliveryConnection:
        edges = [
            WebhookDeliveryEdge(node=WebhookDelivery.from_domain(d), cursor=cursor_of(d, cursors)) for d in page.items
        ]
        return cls(edges=edges, page_info=page_info(page, [e.cursor for e in edges]))


# ---------------------------------------------------------------- inputs


@scalar_fields_input
@strawberry.input(
    description="A webhook of this generation alone: its messages are signed with your webhook signing secret "
    "(rotateWebhookSigningSecret)."
)
class GenerationWebhookInput:
    url: str = strawberry.field(description="An https URL (http only outside production) on a public address.")
    events: list[WebhookEventType] = strawberry.field(
        default_factory=lambda: [WebhookEventType.GENERATION_COMPLETED],
        description="The event types to send; only the completion unless given.",
    )


@strawberry.input(description="A new account-level webhook endpoint.")
class CreateWebhookEndpointInput:
    url: str = strawberry.field(description="An https URL (http only outside production) on a public address.")
    events: list[WebhookEventType] = strawberry.field(description="The event types it receives (at least one).")
    description: str = strawberry.field(default="", description="Your note, at most 200 characters.")


@strawberry.input(description="What to change of a webhook endpoint; an omitted field stays as it is.")
class UpdateWebhookEndpointInput:
    url: str | None = strawberry.field(default=None, description="A new URL, checked as at creation.")
    events: list[WebhookEventType] | None = strawberry.field(default=None, description="The new event types.")
    description: str | None = strawberry.field(default=None, description="A new note.")
    enabled: bool | None = strawberry.field(
        default=None, description="false stops the endpoint: nothing is sent to it, its pending deliveries FAIL."
    )


@strawberry.input(description="Narrow the delivery log.")
class WebhookDeliveryFilter:
    endpoint_id: strawberry.ID | None = strawberry.field(default=None, description="Deliveries to this endpoint.")
    generation_id: strawberry.ID | None = strawberry.field(default=None, description="Messages of this generation.")
    status: WebhookDeliveryStatus | None = strawberry.field(default=None, description="Deliveries in this status.")


# ---------------------------------------------------------------- results


@strawberry.type(description="The new endpoint and its signing secret: shown this once, store it now.")
class CreateWebhookEndpointSuccess:
    endpoint: WebhookEndpoint
    secret: str = strawberry.field(description="`whsec_...`: verify each message's `webhook-signature` with it.")


@strawberry.type
class UpdateWebhookEndpointSuccess:
    endpoint: WebhookEndpoint


@strawberry.type(description="The endpoint is deleted with its deliveries.")
class DeleteWebhookEndpointSuccess:
    id: strawberry.ID


@strawberry.type(
    description="A new signing secret, shown this once. The previous one keeps signing beside it until "
    "`previousSecretExpiresAt` (both signatures are in `webhook-signature`)."
)
class WebhookSecretRotation:
    secret: str
    previous_secret_expires_at: datetime | None = strawberry.field(
        description="Null when there was no previous secret."
    )


@strawberry.type
class RotateWebhookSecretSuccess:
    endpoint: WebhookEndpoint
    rotation: WebhookSecretRotation


@strawberry.type(description="A new attempt of the message is queued (or the pending one is returned).")
class RedeliverWebhookSuccess:
    delivery: WebhookDelivery


CreateWebhookEndpointResult = Annotated[
    CreateWebhookEndpointSuccess | InvalidInput | QuotaExceeded | RateLimited,
    strawberry.union("CreateWebhookEndpointResult"),
]
UpdateWebhookEndpointResult = Annotated[
    UpdateWebhookEndpointSuccess | NotFound | InvalidInput | RateLimited,
    strawberry.union("UpdateWebhookEndpointResult"),
]
DeleteWebhookEndpointResult = Annotated[
    DeleteWebhookEndpointSuccess | NotFound | RateLimited, strawberry.union("DeleteWebhookEndpointResult")
]
RotateWebhookSecretResult = Annotated[
    RotateWebhookSecretSuccess | NotFound | InvalidInput | RateLimited, strawberry.union("RotateWebhookSecretResult")
]
RotateWebhookSigningSecretResult = Annotated[
    WebhookSecretRotation | InvalidInput | RateLimited, strawberry.union("RotateWebhookSigningSecretResult")
]
RedeliverWebhookResult = Annotated[
    RedeliverWebhookSuccess | NotFound | InvalidState | RateLimited, strawberry.union("RedeliverWebhookResult")
]
