"""Who may read or act on a generation: its owner, members of its board, administrators."""

from __future__ import annotations

from domain.boards import BoardRole
from domain.errors import Forbidden, NotFound
from domain.generations import Generation
from domain.repositories import UnitOfWork
from domain.users import Principal


async def board_role(uow: UnitOfWork, generation: Generation, principal: Principal) -> BoardRole | None:
    if generation.board_id is None:
        return None
    return await uow.boards.role_of(generation.board_id, principal.user_id)


async def readable_generation(uow: UnitOfWork, generation: Generation | None, principal: Principal) -> Generation:
    """The generation if the principal may read it; NotFound otherwise (no existence leak)."""
    if generation is None:
        raise NotFound("generation")
    if generation.user_id == principal.user_id or principal.is_admin:
        return generation
    if await board_role(uow, generation, principal) is not None:
        return generation
    raise NotFound("generation")


async def controllable_generation(uow: UnitOfWork, generation: Generation | None, principal: Principal) -> Generation:
    """Readable and also cancellable: owner, board owner/editor, or admin (a key: with `admin:write`)."""
    generation = await readable_generation(uow, generation, principal)
    if generation.user_id == principal.user_id or principal.may_override:
        return generation
    role = await board_role(uow, generation, principal)
    if role is None:
        raise Forbidden("Only its owner, its board's editors or an administrator can cancel this generation.")
    if not role.can_generate:
        raise Forbidden("Board viewers cannot cancel generations.")
    return generation
