"""Read use cases with authorization: generations, boards, chunks."""

from __future__ import annotations

import uuid

from domain.boards import Board, BoardRole
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
    """The viewer's own generations plus those of boards they belong to."""
    async with uow:
        if flt.board_id is not None and await uow.boards.role_of(flt.board_id, principal.user_id) is None:
            return Page([], False)
        board_ids = await uow.boards.board_ids_of(principal.user_id)
        return await uow.generations.page(viewer_id=principal.user_id, board_ids=board_ids, flt=flt, page=page)


async def get_board(*, principal: Principal, board_id: uuid.UUID, uow: UnitOfWork) -> tuple[Board, BoardRole]:
    async with uow:
        role = await uow.boards.role_of(board_id, principal.user_id)
        board = await uow.boards.get(board_id) if role is not None else None
        if board is None or role is None:
            raise NotFound("board")
        return board, role


async def list_boards(*, principal: Principal, uow: UnitOfWork) -> list[Board]:
    async with uow:
        return await uow.boards.for_user(principal.user_id)


async def get_chunk(*, principal: Principal, chunk_id: uuid.UUID, uow: UnitOfWork) -> Chunk:
    async with uow:
        chunk = await uow.chunks.get(chunk_id)
    if chunk is None or chunk.user_id != principal.user_id:
        raise NotFound("chunk")
    return chunk


async def list_chunks(*, principal: Principal, page: PageRequest, uow: UnitOfWork) -> Page[Chunk]:
    async with uow:
        return await uow.chunks.page(principal.user_id, page)
