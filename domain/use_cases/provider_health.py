"""Provider health for admins and /metrics: each provider's circuit, recent error rate, and what it runs now."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence

from domain.errors import Forbidden
from domain.ports import CircuitBreaker
from domain.provider_attempts import ProviderAttempt
from domain.provider_health import ProviderHealth
from domain.repositories import UnitOfWork
from domain.users import Principal

#: The attempts shown per generation (the latest): a page of attempts stays bounded however long it waited.
ADMIN_ATTEMPTS_SHOWN = 100


def _require_admin(actor: Principal) -> None:
    if not actor.is_admin:
        raise Forbidden("Only administrators can see provider health.")


async def provider_health(
    *, breaker: CircuitBreaker, providers: Sequence[str], uow: UnitOfWork
) -> list[ProviderHealth]:
    """Every registered provider, by name (the circuits' shared state, running counts from the database)."""
    found = await breaker.health(sorted(providers))
    async with uow:
        running = await uow.generations.running_by_provider()
    return [dataclasses.replace(h, running=running.get(h.provider, 0)) for h in found]


async def providers_for_admin(
    *, actor: Principal, breaker: CircuitBreaker, providers: Sequence[str], uow: UnitOfWork
) -> list[ProviderHealth]:
    _require_admin(actor)
    return await provider_health(breaker=breaker, providers=providers, uow=uow)


async def attempts_for_admin(
    *, actor: Principal, generation_ids: Sequence[uuid.UUID], uow: UnitOfWork
) -> dict[uuid.UUID, list[ProviderAttempt]]:
    """The provider routes tried for each generation, its latest `ADMIN_ATTEMPTS_SHOWN` (admins only)."""
    _require_admin(actor)
    async with uow:
        return await uow.generations.attempts_of(generation_ids, latest=ADMIN_ATTEMPTS_SHOWN)
