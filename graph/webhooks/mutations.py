"""createWebhookEndpoint, updateWebhookEndpoint, deleteWebhookEndpoint, rotateWebhookSecret,
rotateWebhookSigningSecret, redeliverWebhook."""

from __future__ import annotations

from typing import Annotated

import strawberry

from domain.use_cases.webhook_endpoints import EndpointChange
from graph.common.ids import lookup_id
from graph.context import Info
from graph.permissions import IsAuthenticated
from graph.webhooks.types import (
    CreateWebhookEndpointInput,
    CreateWebhookEndpointResult,
    CreateWebhookEndpointSuccess,
    DeleteWebhookEndpointResult,
    DeleteWebhookEndpointSuccess,
    RedeliverWebhookResult,
    RedeliverWebhookSuccess,
    RotateWebhookSecretResult,
    RotateWebhookSecretSuccess,
    RotateWebhookSigningSecretResult,
    UpdateWebhookEndpointInput,
    UpdateWebhookEndpointResult,
    UpdateWebhookEndpointSuccess,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookSecretRotation,
)

OVERLAP = "`overlapMinutes`: how long the previous secret keeps signing beside it (default 1440, at most 10080)."


@strawberry.type
class WebhookMutations:
    @strawberry.mutation(
        description="Register a webhook endpoint; its signing secret is in the answer, this once. The URL must be "
        "https (http outside production) and resolve to public addresses only (else InvalidInput on `url`).",
        permission_classes=[IsAuthenticated],
    )
    async def create_webhook_endpoint(
        self,
        info: Info,
        input: Annotated[
            CreateWebhookEndpointInput, strawberry.argument(description="The endpoint's URL, events and description.")
        ],
    ) -> CreateWebhookEndpointResult:
        endpoint, secret = await info.context.services.webhooks.create_endpoint(
            info.context.require_viewer(),
            url=input.url,
            events=[e.value for e in input.events],
            description=input.description,
        )
        return CreateWebhookEndpointSuccess(endpoint=WebhookEndpoint.from_domain(endpoint), secret=secret)

    @strawberry.mutation(
        description="Change a webhook endpoint's URL, events, note, or enable/disable it.",
        permission_classes=[IsAuthenticated],
    )
    async def update_webhook_endpoint(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The endpoint's id.")],
        input: Annotated[
            UpdateWebhookEndpointInput,
            strawberry.argument(description="What to change; absent fields stay as they are."),
        ],
    ) -> UpdateWebhookEndpointResult:
        change = EndpointChange(
            url=input.url,
            events=[e.value for e in input.events] if input.events is not None else None,
            description=input.description,
            enabled=input.enabled,
        )
        endpoint = await info.context.services.webhooks.update_endpoint(
            info.context.require_viewer(), lookup_id(id, "webhook endpoint"), change
        )
        return UpdateWebhookEndpointSuccess(endpoint=WebhookEndpoint.from_domain(endpoint))

    @strawberry.mutation(
        description="Delete a webhook endpoint with its secrets and deliveries (pending ones are never sent).",
        permission_classes=[IsAuthenticated],
    )
    async def delete_webhook_endpoint(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="The endpoint's id.")]
    ) -> DeleteWebhookEndpointResult:
        deleted = await info.context.services.webhooks.delete_endpoint(
            info.context.require_viewer(), lookup_id(id, "webhook endpoint")
        )
        return DeleteWebhookEndpointSuccess(id=strawberry.ID(str(deleted)))

    @strawberry.mutation(
        description="Draw a new signing secret for the endpoint (shown this once). " + OVERLAP,
        permission_classes=[IsAuthenticated],
    )
    async def rotate_webhook_secret(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The endpoint's id.")],
        overlap_minutes: Annotated[
            int | None,
            strawberry.argument(
                description="Minutes the previous secret keeps signing beside the new one (default 1440, at most 10080)."
            ),
        ] = None,
    ) -> RotateWebhookSecretResult:
        webhooks = info.context.services.webhooks
        viewer = info.context.require_viewer()
        endpoint_id = lookup_id(id, "webhook endpoint")
        rotation = await webhooks.rotate_endpoint_secret(viewer, endpoint_id, overlap_minutes)
        endpoint = await webhooks.endpoint(viewer, endpoint_id)
        return RotateWebhookSecretSuccess(
            endpoint=WebhookEndpoint.from_domain(endpoint),
            rotation=WebhookSecretRotation(
                secret=rotation.secret, previous_secret_expires_at=rotation.previous_expires_at
            ),
        )

    @strawberry.mutation(
        description="Draw your webhook signing secret (shown this once): it signs the webhooks that generations ask "
        "for (`GenerateInput.webhook`), which need one. Calling it again replaces it. " + OVERLAP,
        permission_classes=[IsAuthenticated],
    )
    async def rotate_webhook_signing_secret(
        self,
        info: Info,
        overlap_minutes: Annotated[
            int | None,
            strawberry.argument(
                description="Minutes the previous secret keeps signing beside the new one (default 1440, at most 10080)."
            ),
        ] = None,
    ) -> RotateWebhookSigningSecretResult:
        rotation = await info.context.services.webhooks.rotate_signing_secret(
            info.context.require_viewer(), overlap_minutes
        )
        return WebhookSecretRotation(secret=rotation.secret, previous_secret_expires_at=rotation.previous_expires_at)

    @strawberry.mutation(
        description="Send a delivery's message again (the same `webhook-id`) to the same target, now. While one "
        "such redelivery is pending it is the answer; nothing more is queued.",
        permission_classes=[IsAuthenticated],
    )
    async def redeliver_webhook(
        self,
        info: Info,
        delivery_id: Annotated[strawberry.ID, strawberry.argument(description="The delivery to send again.")],
    ) -> RedeliverWebhookResult:
        delivery = await info.context.services.webhooks.redeliver(
            info.context.require_viewer(), lookup_id(delivery_id, "webhook delivery")
        )
        return RedeliverWebhookSuccess(delivery=WebhookDelivery.from_domain(delivery))
