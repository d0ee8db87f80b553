"""Webhooks: endpoints and secrets (the API), deliveries (the workers), the delivery log."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from domain.pagination import Page, PageRequest
from domain.repositories import UnitOfWorkFactory
from domain.use_cases import webhook_deliveries, webhook_endpoints
from domain.use_cases.webhook_deliveries import DeliveryPolicy, DeliveryPorts
from domain.use_cases.webhook_endpoints import EndpointChange, EndpointPolicy, EndpointPorts
from domain.users import Principal
from domain.webhook_endpoints import SecretRotation, WebhookEndpoint
from domain.webhook_messages import DeliveryFilter, DeliveryStatus, WebhookDelivery


@dataclass(frozen=True, slots=True)
class Webhooks:
    endpoint_ports: EndpointPorts
    endpoint_policy: EndpointPolicy
    delivery_ports: DeliveryPorts
    delivery_policy: DeliveryPolicy
    reads: UnitOfWorkFactory  # read-only units of work

    async def create_endpoint(
        self, principal: Principal, *, url: str, events: Sequence[str], description: str
    ) -> tuple[WebhookEndpoint, str]:
        return await webhook_endpoints.create(
            principal,
            url=url,
            events=events,
            description=description,
            ports=self.endpoint_ports,
            policy=self.endpoint_policy,
        )

    async def update_endpoint(
        self, principal: Principal, endpoint_id: uuid.UUID, change: EndpointChange
    ) -> WebhookEndpoint:
        return await webhook_endpoints.update(
            principal, endpoint_id, change, ports=self.endpoint_ports, policy=self.endpoint_policy
        )

    async def delete_endpoint(self, principal: Principal, endpoint_id: uuid.UUID) -> uuid.UUID:
        return await webhook_endpoints.delete(
            principal, endpoint_id, ports=self.endpoint_ports, policy=self.endpoint_policy
        )

    async def rotate_endpoint_secret(
        self, principal: Principal, endpoint_id: uuid.UUID, overlap_minutes: int | None
    ) -> SecretRotation:
        return await webhook_endpoints.rotate_endpoint_secret(
            principal, endpoint_id, overlap_minutes, ports=self.endpoint_ports, policy=self.endpoint_policy
        )

    async def rotate_signing_secret(self, principal: Principal, overlap_minutes: int | None) -> SecretRotation:
        return await webhook_endpoints.rotate_signing_secret(
            principal, overlap_minutes, ports=self.endpoint_ports, policy=self.endpoint_policy
        )

    async def endpoints(self, principal: Principal) -> list[WebhookEndpoint]:
        return await webhook_endpoints.endpoints(principal, uow_factory=self.reads)

    async def endpoint(self, principal: Principal, endpoint_id: uuid.UUID) -> WebhookEndpoint:
        return await webhook_endpoints.endpoint(principal, endpoint_id, uow_factory=self.reads)

    async def deliveries(
        self, principal: Principal, flt: DeliveryFilter, request: PageRequest
    ) -> Page[WebhookDelivery]:
        return await webhook_deliveries.page(principal, flt, request, uow_factory=self.reads)

    async def redeliver(self, principal: Principal, delivery_id: uuid.UUID) -> WebhookDelivery:
        return await webhook_deliveries.redeliver(
            principal, delivery_id, ports=self.delivery_ports, policy=self.delivery_policy
        )

    async def deliver(self, delivery_id: uuid.UUID, token: uuid.UUID | None) -> DeliveryStatus | None:
        """One attempt (the delivery task)."""
        return await webhook_deliveries.deliver(
            delivery_id, token, ports=self.delivery_ports, policy=self.delivery_policy
        )

    async def sweep(self) -> int:
        """Due deliveries queued again (the periodic task)."""
        return await webhook_deliveries.sweep(ports=self.delivery_ports, policy=self.delivery_policy)
