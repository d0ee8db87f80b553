"""Given-helpers for worker tests: a user with credits, models, generations, and waiting for outcomes."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

from domain.catalogue import AiModel, ModelKind
from domain.credits import CreditBalance, LedgerEntry
from domain.generations import Generation
from domain.pagination import PageRequest
from domain.repositories import Asset
from domain.use_cases import catalogue
from domain.use_cases.generations import GenerateRequest, cancel, generate
from domain.users import Principal, User
from infrastructure.container import Container
from tests.fixtures.users import add_user

COST = 10
GRANT = 100


@dataclass
class World:
    container: Container
    user: User

    @property
    def principal(self) -> Principal:
        return Principal(self.user.id, self.user.role)

    async def model(
        self, slug: str, *, provider: str = "simulated", kind: ModelKind = ModelKind.IMAGE, **capabilities: Any
    ) -> AiModel:
        c = self.container
        return await catalogue.upsert_model(
            actor=None,
            slug=slug,
            name=slug,
            provider=provider,
            kind=kind,
            cost_credits=COST,
            capabilities=capabilities,
            is_active=True,
            known_providers=frozenset(c.providers.names),
            uow=c.uow(),
            catalogue=c.catalogue,
        )

    async def generate(self, model: AiModel, prompt: str = "a red fox", **params: Any) -> Generation:
        c = self.container
        return await generate(
            principal=self.principal,
            request=GenerateRequest(model_id=model.id, prompt=prompt, params=params or None),
            uow=c.uow(),
            starter=c.starter,
            catalogue=c.catalogue,
            jobs=c.jobs,
            publisher=c.publisher,
            clock=c.clock,
        )

    async def cancel(self, generation_id: uuid.UUID) -> Generation:
        c = self.container
        return await cancel(
            principal=self.principal,
            generation_id=generation_id,
            uow=c.uow(),
            jobs=c.jobs,
            publisher=c.publisher,
            clock=c.clock,
        )

    async def get(self, generation_id: uuid.UUID) -> Generation:
        async with self.container.uow() as uow:
            generation = await uow.generations.get(generation_id)
        assert generation is not None
        return generation

    async def wait_final(self, generation_id: uuid.UUID, timeout: float = 20.0) -> Generation:
        deadline = time.monotonic() + timeout
        while True:
            generation = await self.get(generation_id)
            if generation.is_final:
                return generation
            assert time.monotonic() < deadline, f"still {generation.status} after {timeout}s: {generation}"
            await asyncio.sleep(0.1)

    async def assets(self, generation_id: uuid.UUID, kind: str | None = "output") -> list[Asset]:
        """The generation's assets of `kind` (its outputs by default: thumbnails follow them later); None: all."""
        async with self.container.uow() as uow:
            found = (await uow.generations.assets_of([generation_id])).get(generation_id, [])
        return [a for a in found if kind is None or a.kind == kind]

    async def balance(self) -> tuple[CreditBalance, CreditBalance]:
        """The account, and the same recomputed from the ledger (the invariant check)."""
        async with self.container.uow() as uow:
            return await uow.credits.balance(self.user.id), await uow.credits.ledger_totals(self.user.id)

    async def ledger(self) -> list[LedgerEntry]:
        async with self.container.uow() as uow:
            return (await uow.credits.ledger_page(self.user.id, PageRequest(first=100))).items


async def new_world(container: Container, email: str | None = None) -> World:
    return World(container, await add_user(container, email=email, credits=GRANT))
