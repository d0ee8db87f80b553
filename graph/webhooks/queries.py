"""webhookEndpoints, webhookEndpoint, webhookDeliveries."""

from __future__ import annotations

from typing import Annotated

import strawberry

from domain.errors import NotFound
from domain.webhook_messages import DeliveryFilter
from graph.common.connections import After, Before, First, Last, page_request
from graph.common.ids import lookup_id, parse_id
from graph.context import Info
from graph.permissions import IsAuthenticated
from graph.webhooks.types import WebhookDeliveryConnection, WebhookDeliveryFilter, WebhookEndpoint


@strawberry.type
class WebhookQueries:
    @strawberry.field(
        description="The viewer's webhook endpoints, oldest first (at most 10 per account by default).",
        permission_classes=[IsAuthenticated],
    )
    async def webhook_endpoints(self, info: Info) -> list[WebhookEndpoint]:
        found = await info.context.services.webhooks.endpoints(info.context.require_viewer())
        return [WebhookEndpoint.from_domain(e) for e in found]

    @strawberry.field(
        description="One of the viewer's webhook endpoints, or null.", permission_classes=[IsAuthenticated]
    )
    async def webhook_endpoint(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="The endpoint's id.")]
    ) -> WebhookEndpoint | None:
        try:
            found = await info.context.services.webhooks.endpoint(
                info.context.require_viewer(), lookup_id(id, "webhook endpoint")
            )
        except NotFound:
            return None
        return WebhookEndpoint.from_domain(found)

    @strawberry.field(
        description="The viewer's webhook deliveries (the delivery log), newest first (`first` <= 100).",
        permission_classes=[IsAuthenticated],
    )
    async def webhook_deliveries(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        filter: Annotated[
            WebhookDeliveryFilter | None,
            strawberry.argument(description="Only the deliveries that match every given part."),
        ] = None,
    ) -> WebhookDeliveryConnection:
        services = info.context.services
        request = page_request(services.cursors, first, after, last, before)
        flt = DeliveryFilter()
        if filter is not None:
            flt = DeliveryFilter(
                endpoint_id=parse_id(filter.endpoint_id, "filter.endpointId") if filter.endpoint_id else None,
                generation_id=parse_id(filter.generation_id, "filter.generationId") if filter.generation_id else None,
                status=filter.status,
            )
        page = await services.webhooks.deliveries(info.context.require_viewer(), flt, request)
        return WebhookDeliveryConnection.from_page(page, services.cursors)
