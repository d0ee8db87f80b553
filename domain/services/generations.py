"""Generations: start, cancel, delete, read one, read a page."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from domain.generations import Generation
from domain.pagination import Page, PageRequest
from domain.ports import CatalogueReader, Clock, EventPublisher, JobQueue, RateBucket, RateLimiter
from domain.repositories import GenerationFilter, GenerationStarter, UnitOfWorkFactory
from domain.use_cases import deletions, generations
from domain.use_cases import reads as read_uc
from domain.use_cases.deletions import DeletionOutcome
from domain.use_cases.generations import GenerateRequest
from domain.use_cases.rate_limits import RateRule
from domain.use_cases.webhook_outbox import DEFAULT_OUTBOX, OutboxPolicy
from domain.users import Principal
from domain.webhooks import WebhookDestinations


@dataclass(frozen=True, slots=True)
class Generations:
    uow: UnitOfWorkFactory
    reads: UnitOfWorkFactory  # read-only units of work (no transaction to open and roll back)
    starter: GenerationStarter
    catalogue: CatalogueReader
    jobs: JobQueue
    publisher: EventPublisher
    clock: Clock
    limiter: RateLimiter
    rate: RateRule
    #: Checks the URL of a generation's own webhook (None: generations cannot ask for one).
    destinations: WebhookDestinations | None = None
    webhooks: OutboxPolicy = DEFAULT_OUTBOX

    async def generate(
        self, principal: Principal, request: GenerateRequest, *, also_limit: Sequence[RateBucket] = ()
    ) -> Generation:
        """`also_limit`: the transport's own buckets (per client address), counted in the same hit."""
        return await generations.generate(
            principal=principal,
            request=request,
            uow=self.uow(),
            starter=self.starter,
            catalogue=self.catalogue,
            jobs=self.jobs,
            publisher=self.publisher,
            clock=self.clock,
            limiter=self.limiter,
            rate=self.rate,
            also_limit=also_limit,
            destinations=self.destinations,
        )

    async def cancel(self, principal: Principal, generation_id: uuid.UUID) -> Generation:
        return await generations.cancel(
            principal=principal,
            generation_id=generation_id,
            uow=self.uow(),
            jobs=self.jobs,
            publisher=self.publisher,
            clock=self.clock,
            webhooks=self.webhooks,
        )

    async def delete(self, principal: Principal, generation_id: uuid.UUID) -> uuid.UUID:
        return await deletions.delete_generation(
            principal=principal,
            generation_id=generation_id,
            uow=self.uow(),
            jobs=self.jobs,
            publisher=self.publisher,
            clock=self.clock,
        )

    async def delete_many(self, principal: Principal, generation_ids: Sequence[uuid.UUID]) -> list[DeletionOutcome]:
        return await deletions.delete_generations(
            principal=principal,
            generation_ids=generation_ids,
            uow=self.uow(),
            jobs=self.jobs,
            publisher=self.publisher,
            clock=self.clock,
        )

    async def get(self, principal: Principal, generation_id: uuid.UUID) -> Generation:
        return await read_uc.get_generation(principal=principal, generation_id=generation_id, uow=self.reads())

    async def page(self, principal: Principal, flt: GenerationFilter, page: PageRequest) -> Page[Generation]:
        return await read_uc.list_generations(principal=principal, flt=flt, page=page, uow=self.reads())
