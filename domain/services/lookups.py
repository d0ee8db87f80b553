"""Batch reads by id for the fields of objects the caller was already allowed to read.

The GraphQL layer batches these per request (graph/loaders.py). None of them checks who
asks: each is reached only through a parent object the use cases above handed out
(a generation's inputs, a board's members), never from a client-given id alone; `node(id:)`
uses them only to learn which kind an id names, then asks that kind's authorized read
(graph/nodes.py), and hands out nothing a lookup alone found.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from domain.boards import Board, BoardMember, Membership
from domain.catalogue import AiModel, Preset
from domain.chunks import Chunk
from domain.generations import Generation
from domain.invitations import BoardInvitation
from domain.pagination import Page, PageRequest
from domain.ports import CatalogueReader, Clock
from domain.repositories import Asset, UnitOfWork, UnitOfWorkFactory
from domain.use_cases import reads
from domain.users import Principal, User

T = TypeVar("T")
Ids = Sequence[uuid.UUID]


@dataclass(frozen=True, slots=True)
class Lookups:
    uow: UnitOfWorkFactory  # read-only units of work
    catalogue: CatalogueReader
    clock: Clock

    async def _read(self, fetch: Callable[[UnitOfWork], Awaitable[T]]) -> T:
        async with self.uow() as uow:
            return await fetch(uow)

    async def users(self, ids: Ids) -> Sequence[User]:
        return await self._read(lambda uow: uow.users.get_many(list(ids)))

    async def boards(self, ids: Ids) -> Sequence[Board]:
        return await self._read(lambda uow: uow.boards.get_many(list(ids)))

    async def generations(self, ids: Ids) -> Sequence[Generation]:
        return await self._read(lambda uow: uow.generations.get_many(list(ids)))

    async def assets_by_id(self, ids: Ids) -> Sequence[Asset]:
        return await self._read(lambda uow: uow.generations.get_assets(list(ids)))

    async def chunks(self, ids: Ids) -> Sequence[Chunk]:
        return await self._read(lambda uow: uow.chunks.get_many(list(ids)))

    async def models(self, ids: Ids) -> Sequence[AiModel]:
        return await self._read(lambda uow: uow.catalogue.get_models(list(ids)))

    async def presets(self, ids: Ids) -> Sequence[Preset]:
        return await self._read(lambda uow: uow.catalogue.get_presets(list(ids)))

    async def input_ids(self, generation_ids: Ids) -> dict[uuid.UUID, list[uuid.UUID]]:
        return await self._read(lambda uow: uow.generations.inputs_of(list(generation_ids)))

    async def assets(self, generation_ids: Ids) -> dict[uuid.UUID, list[Asset]]:
        return await self._read(lambda uow: uow.generations.assets_of(list(generation_ids)))

    async def member_pages(self, pages: Sequence[tuple[uuid.UUID, PageRequest]]) -> list[Page[Membership]]:
        return await self._read(lambda uow: uow.boards.member_pages(pages))

    async def member_counts(self, board_ids: Ids) -> dict[uuid.UUID, int]:
        return await self._read(lambda uow: uow.boards.member_counts(list(board_ids)))

    async def members(self, board_ids: Ids) -> dict[uuid.UUID, list[BoardMember]]:
        return await self._read(lambda uow: uow.boards.members_of(list(board_ids)))

    async def open_invitations(self, board_ids: Ids) -> dict[uuid.UUID, list[BoardInvitation]]:
        return await self._read(lambda uow: uow.invitations.open_for_boards(list(board_ids), self.clock.now()))

    async def cached_model(self, model_id: uuid.UUID) -> AiModel | None:
        """From this process's catalogue snapshot only (None: not in it, which is not "absent")."""
        found: AiModel | None = await self.catalogue.model(model_id)
        return found

    async def cached_preset(self, preset_id: uuid.UUID) -> Preset | None:
        found: Preset | None = await self.catalogue.preset(preset_id)
        return found

    async def board_pages(
        self, principal: Principal, pages: Sequence[tuple[uuid.UUID, PageRequest]]
    ) -> list[Page[Generation]]:
        """Pages of several boards' generations as `principal` may see them (the use case checks membership)."""
        return await reads.board_pages(principal=principal, pages=pages, uow=self.uow())
