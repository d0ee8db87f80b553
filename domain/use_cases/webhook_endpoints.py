"""Registering webhook endpoints, their secrets and the user's default signing secret.

Every argument is the client's: URLs are checked as text here, then by the destination
check (scheme, host, every address it resolves to) before anything is stored. Another
user's endpoint is NotFound, as a missing one. Each call counts in the user's webhook
management budget (RateLimited beyond it). The endpoint cap is checked with the user's row
locked, so concurrent creations cannot pass it together.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace

from domain.errors import InvalidInput, NotFound, Problems, QuotaExceeded
from domain.ports import Clock, RateLimiter
from domain.repositories import UnitOfWork, UnitOfWorkFactory
from domain.use_cases.rate_limits import RateRule, enforce
from domain.users import Principal
from domain.webhook_endpoints import (
    MAX_ENDPOINTS_PER_USER,
    SecretRotation,
    WebhookEndpoint,
    check_description,
    check_url_text,
    events_of,
    overlap_of,
)
from domain.webhook_messages import ENDPOINT_DISABLED
from domain.webhook_ports import SecretSealer
from domain.webhooks import ForbiddenDestination, WebhookDestinations, new_secret


@dataclass(frozen=True, slots=True)
class EndpointPorts:
    uow: UnitOfWorkFactory
    destinations: WebhookDestinations
    sealer: SecretSealer
    clock: Clock
    limiter: RateLimiter


@dataclass(frozen=True, slots=True)
class EndpointPolicy:
    max_endpoints: int = MAX_ENDPOINTS_PER_USER
    rate: RateRule = RateRule(30, 60)


@dataclass(frozen=True, slots=True)
class EndpointChange:
    """What updateWebhookEndpoint changes; None leaves a field as it is."""

    url: str | None = None
    events: Sequence[str] | None = None
    description: str | None = None
    enabled: bool | None = None


async def check_destination(destinations: WebhookDestinations, url: str, field: str) -> None:
    """InvalidInput on `field` when the URL may not be called (not https in production, a forbidden address...)."""
    try:
        await destinations.check(url)
    except ForbiddenDestination as exc:
        raise InvalidInput.single(field, exc.message) from exc


async def _budget(ports: EndpointPorts, policy: EndpointPolicy, principal: Principal) -> None:
    await enforce(ports.limiter, bucket=f"webhooks:{principal.user_id}", rule=policy.rate)


async def _own(uow: UnitOfWork, principal: Principal, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    endpoint = await uow.webhooks.endpoint(endpoint_id)
    if endpoint is None or endpoint.user_id != principal.user_id:
        raise NotFound("webhook endpoint")
    return endpoint


async def create(
    principal: Principal,
    *,
    url: str,
    events: Sequence[str],
    description: str,
    ports: EndpointPorts,
    policy: EndpointPolicy,
) -> tuple[WebhookEndpoint, str]:
    """The new endpoint and its signing secret (shown this once)."""
    await _budget(ports, policy, principal)
    problems = Problems()
    check_url_text(url, "url", problems)
    wanted = events_of(events, "events", problems)
    check_description(description, "description", problems)
    problems.raise_if_any()
    await check_destination(ports.destinations, url, "url")
    now = ports.clock.now()
    endpoint = WebhookEndpoint(
        id=uuid.uuid4(),
        user_id=principal.user_id,
        url=url,
        events=wanted,
        description=description,
        enabled=True,
        created_at=now,
        updated_at=now,
    )
    secret = new_secret()
    async with ports.uow() as uow:
        await uow.users.lock(principal.user_id)  # one creation of the user at a time: the cap holds
        if len(await uow.webhooks.endpoints_of(principal.user_id)) >= policy.max_endpoints:
            raise QuotaExceeded(policy.max_endpoints, f"At most {policy.max_endpoints} webhook endpoints per account.")
        await uow.webhooks.add_endpoint(endpoint)
        await uow.webhooks.add_secret(
            user_id=principal.user_id, endpoint_id=endpoint.id, sealed=ports.sealer.seal(secret), at=now
        )
        await uow.commit()
    return endpoint, secret


async def update(
    principal: Principal,
    endpoint_id: uuid.UUID,
    change: EndpointChange,
    *,
    ports: EndpointPorts,
    policy: EndpointPolicy,
) -> WebhookEndpoint:
    """Disabling stops the endpoint's pending deliveries (FAILED, ENDPOINT_DISABLED)."""
    await _budget(ports, policy, principal)
    problems = Problems()
    if change.url is not None:
        check_url_text(change.url, "url", problems)
    wanted = events_of(change.events, "events", problems) if change.events is not None else None
    if change.description is not None:
        check_description(change.description, "description", problems)
    problems.raise_if_any()
    async with ports.uow() as uow:
        await _own(uow, principal, endpoint_id)  # NotFound before the destination is looked up
    if change.url is not None:
        await check_destination(ports.destinations, change.url, "url")
    now = ports.clock.now()
    async with ports.uow() as uow:
        current = await _own(uow, principal, endpoint_id)
        updated = replace(
            current,
            url=change.url if change.url is not None else current.url,
            events=wanted if wanted is not None else current.events,
            description=change.description if change.description is not None else current.description,
            enabled=change.enabled if change.enabled is not None else current.enabled,
            updated_at=now,
        )
        await uow.webhooks.update_endpoint(updated)
        if current.enabled and not updated.enabled:
            await uow.webhooks.stop_pending(endpoint_id, reason=ENDPOINT_DISABLED)
        await uow.commit()
    return updated


async def delete(
    principal: Principal, endpoint_id: uuid.UUID, *, ports: EndpointPorts, policy: EndpointPolicy
) -> uuid.UUID:
    """The endpoint goes with its secrets and its deliveries (pending ones are never attempted)."""
    await _budget(ports, policy, principal)
    async with ports.uow() as uow:
        await _own(uow, principal, endpoint_id)
        if not await uow.webhooks.delete_endpoint(endpoint_id):
            raise NotFound("webhook endpoint")
        await uow.commit()
    return endpoint_id


async def rotate_endpoint_secret(
    principal: Principal,
    endpoint_id: uuid.UUID,
    overlap_minutes: int | None,
    *,
    ports: EndpointPorts,
    policy: EndpointPolicy,
) -> SecretRotation:
    overlap = overlap_of(overlap_minutes)
    await _budget(ports, policy, principal)
    secret = new_secret()
    now = ports.clock.now()
    async with ports.uow() as uow:
        await uow.users.lock(principal.user_id)  # concurrent rotations one after the other
        await _own(uow, principal, endpoint_id)
        until = await uow.webhooks.retire_secrets(
            user_id=principal.user_id, endpoint_id=endpoint_id, at=now, overlap=overlap
        )
        await uow.webhooks.add_secret(
            user_id=principal.user_id, endpoint_id=endpoint_id, sealed=ports.sealer.seal(secret), at=now
        )
        await uow.commit()
    return SecretRotation(secret=secret, previous_expires_at=until)


async def rotate_signing_secret(
    principal: Principal, overlap_minutes: int | None, *, ports: EndpointPorts, policy: EndpointPolicy
) -> SecretRotation:
    """The user's default signing secret (per-generation webhooks): drawn on the first call, replaced after."""
    overlap = overlap_of(overlap_minutes)
    await _budget(ports, policy, principal)
    secret = new_secret()
    now = ports.clock.now()
    async with ports.uow() as uow:
        await uow.users.lock(principal.user_id)  # concurrent rotations one after the other
        until = await uow.webhooks.retire_secrets(user_id=principal.user_id, endpoint_id=None, at=now, overlap=overlap)
        await uow.webhooks.add_secret(
            user_id=principal.user_id, endpoint_id=None, sealed=ports.sealer.seal(secret), at=now
        )
        await uow.commit()
    return SecretRotation(secret=secret, previous_expires_at=until)


async def endpoints(principal: Principal, *, uow_factory: UnitOfWorkFactory) -> list[WebhookEndpoint]:
    async with uow_factory() as uow:
        return await uow.webhooks.endpoints_of(principal.user_id)


async def endpoint(principal: Principal, endpoint_id: uuid.UUID, *, uow_factory: UnitOfWorkFactory) -> WebhookEndpoint:
    async with uow_factory() as uow:
        return await _own(uow, principal, endpoint_id)
