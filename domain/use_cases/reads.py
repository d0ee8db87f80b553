"""Read use cases with authorization: generations, boards, chunks."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from domain.boards import Board, BoardRole, MemberBoard
from domain.chunks import Chunk
from domain.errors import NotFound
from domain.generations import Generation
from domain.pagination import Page, PageRequest
from domain.repositories import GenerationFilter, UnitOfWork
from domain.use_cases.access import readable_generation
from domain.users import Principal


async def get_generation(*, principal: Principal, generation_id: uuid.UUID, uow: UnitOfWork) -> Generation:
    async with uow:
        return await readable_generation(uow, await uow.generations.get(generation_id), principal)


async def list_generations(
    *, principal: Principal, flt: GenerationFilter, page: PageRequest, uow: UnitOfWork
) -> Page[Generation]:
    """The viewer's own generations plus those of boards they belong to (a board's only to its members)."""
    async with uow:
        return await uow.generations.page(viewer_id=principal.user_id, flt=flt, page=page)


async def board_pages(
    *, principal: Principal, pages: Sequence[tuple[uuid.UUID, PageRequest]], uow: UnitOfWork
) -> list[Page[Generation]]:
    """`list_generations` filtered by each board, for several boards at once (empty where not a member)."""
    async with uow:
        return await uow.generations.board_pages(viewer_id=principal.user_id, pages=pages)


async def get_board(*, principal: Principal, board_id: uuid.UUID, uow: UnitOfWork) -> tuple[Board, BoardRole]:
    async with uow:
        found = await uow.boards.with_role(board_id, principal.user_id)
    if found is None:
        raise NotFound("board")
    return found


async def list_boards(*, principal: Principal, uow: UnitOfWork) -> list[Board]:
    async with uow:
        return await uow.boards.for_user(principal.user_id)


async def page_boards(*, principal: Principal, page: PageRequest, uow: UnitOfWork) -> Page[MemberBoard]:
    """A page of the boards the viewer belongs to, newest first, with the viewer's role."""
    async with uow:
        return await uow.boards.page_for_user(principal.user_id, page)


async def count_boards(*, principal: Principal, uow: UnitOfWork) -> int:
    async with uow:
        return await uow.boards.count_for_user(principal.user_id)


async def count_chunks(*, principal: Principal, uow: UnitOfWork) -> int:
    async with uow:
        count, _ = await uow.chunks.usage(principal.user_id)
    return count


async def get_chunk(*, principal: Principal, chunk_id: uuid.UUID, uow: UnitOfWork) -> Chunk:
    async with uow:
        chunk = await uow.chunks.get(chunk_id)
    if chunk is None or chunk.user_id != principal.user_id:
        raise NotFound("chunk")
    return chunk


async def list_chunks(*, principal: Principal, page: PageRequest, uow: UnitOfWork) -> Page[Chunk]:
    async with uow:
        return await uow.chunks.page(principal.user_id, page)
