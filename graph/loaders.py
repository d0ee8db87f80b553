"""Per-request DataLoaders (never module-level): one SQL statement per batch of keys."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from strawberry.dataloader import DataLoader

from domain.boards import Board, BoardMember
from domain.catalogue import AiModel, Preset
from domain.chunks import Chunk
from domain.generations import Generation
from domain.invitations import BoardInvitation
from domain.pagination import Page, PageRequest
from domain.provider_attempts import ProviderAttempt
from domain.repositories import Asset
from domain.services.lookups import Lookups
from domain.users import Principal, User

K = TypeVar("K")
V = TypeVar("V")
#: Nested board pages read in one statement (a UNION ALL of keyset pages); more take another.
BOARD_PAGES_PER_STATEMENT = 50


def _by_id(
    fetch: Callable[[list[uuid.UUID]], Awaitable[Sequence[V]]], key: Callable[[V], uuid.UUID]
) -> DataLoader[uuid.UUID, V | None]:
    async def load(ids: list[uuid.UUID]) -> list[V | None]:
        found = {key(item): item for item in await fetch(ids)}
        return [found.get(i) for i in ids]

    return DataLoader(load_fn=load)


def _grouped(fetch: Callable[[list[uuid.UUID]], Awaitable[dict[uuid.UUID, list[V]]]]) -> DataLoader[uuid.UUID, list[V]]:
    async def load(ids: list[uuid.UUID]) -> list[list[V]]:
        found = await fetch(ids)
        return [found.get(i, []) for i in ids]

    return DataLoader(load_fn=load)


def _counts(fetch: Callable[[list[uuid.UUID]], Awaitable[dict[uuid.UUID, int]]]) -> DataLoader[uuid.UUID, int]:
    async def load(ids: list[uuid.UUID]) -> list[int]:
        found = await fetch(ids)
        return [found.get(i, 0) for i in ids]

    return DataLoader(load_fn=load)


# No loader's function may be a method of `Loaders`: the instance would hold itself through its loader, a
# cycle that kept every request's loaders (and what they reached) for the garbage collector.
class Loaders:
    """Named `<Thing>By<Key>`; models and presets come from the catalogue cache, SQL only on a miss."""

    def __init__(self, lookups: Lookups) -> None:
        self.lookups = lookups
        self.users_by_id = _by_id(lookups.users, lambda u: u.id)
        self.boards_by_id = _by_id(lookups.boards, lambda b: b.id)
        self.chunks_by_id = _by_id(lookups.chunks, lambda c: c.id)
        self.generations_by_id = _by_id(lookups.generations, lambda g: g.id)
        self.assets_by_id = _by_id(lookups.assets_by_id, lambda a: a.id)
        self.input_ids_by_generation = _grouped(lookups.input_ids)
        self.assets_by_generation = _grouped(lookups.assets)
        self.members_by_board = _grouped(lookups.members)
        self.invitations_by_board = _grouped(lookups.open_invitations)
        self.models_by_id = _by_id(lookups.models, lambda m: m.id)
        self.presets_by_id = _by_id(lookups.presets, lambda p: p.id)
        self._board_pages: DataLoader[tuple[uuid.UUID, PageRequest], Page[Generation]] | None = None
        self._attempts: DataLoader[uuid.UUID, list[ProviderAttempt]] | None = None
        self.member_pages_by_board = DataLoader(load_fn=lookups.member_pages, max_batch_size=BOARD_PAGES_PER_STATEMENT)
        self.member_counts_by_board = _counts(lookups.member_counts)

    async def provider_attempts(
        self,
        fetch: Callable[[list[uuid.UUID]], Awaitable[dict[uuid.UUID, list[ProviderAttempt]]]],
        generation_id: uuid.UUID,
    ) -> list[ProviderAttempt]:
        """A generation's provider attempts; those of every generation asked in one tick in one statement.

        `fetch` is the admin's (one viewer per request), bound by the resolver on its first call.
        """
        if self._attempts is None:
            self._attempts = _grouped(fetch)
        return await self._attempts.load(generation_id)

    async def board_generations(self, principal: Principal, board_id: uuid.UUID, page: PageRequest) -> Page[Generation]:
        """A page of a board's generations, as `principal` (one viewer per request) may see it.

        A board's `generations` under each item of a list (`boards { generations }`) is a page
        per parent: the pages asked for in one tick are read in one statement, identical ones once.
        """
        if self._board_pages is None:
            load = functools.partial(self.lookups.board_pages, principal)
            self._board_pages = DataLoader(load_fn=load, max_batch_size=BOARD_PAGES_PER_STATEMENT)
        return await self._board_pages.load((board_id, page))

    # A cache miss is not "absent": this replica's snapshot may predate a model or preset written
    # on another one (its invalidation lost, the TTL not yet up). The database is the truth; the
    # loaders batch every miss of a request into one statement, and a warm cache needs none.
    async def model(self, model_id: uuid.UUID) -> AiModel | None:
        cached = await self.lookups.cached_model(model_id)
        return cached if cached is not None else await self.models_by_id.load(model_id)

    async def preset(self, preset_id: uuid.UUID) -> Preset | None:
        cached = await self.lookups.cached_preset(preset_id)
        return cached if cached is not None else await self.presets_by_id.load(preset_id)

    async def user(self, user_id: uuid.UUID) -> User | None:
        return await self.users_by_id.load(user_id)

    async def board(self, board_id: uuid.UUID) -> Board | None:
        return await self.boards_by_id.load(board_id)

    async def members(self, board_id: uuid.UUID) -> list[BoardMember]:
        return await self.members_by_board.load(board_id)

    async def invitations(self, board_id: uuid.UUID) -> list[BoardInvitation]:
        """Open invitations of a board; callers show them to its managers only."""
        return await self.invitations_by_board.load(board_id)

    async def inputs(self, generation_id: uuid.UUID) -> list[Chunk]:
        ids = await self.input_ids_by_generation.load(generation_id)
        chunks = await self.chunks_by_id.load_many(ids)
        return [c for c in chunks if c is not None]

    async def assets(self, generation_id: uuid.UUID) -> list[Asset]:
        return await self.assets_by_generation.load(generation_id)
