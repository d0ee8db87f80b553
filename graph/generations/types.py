"""GraphQL types of the generations area."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from domain import generations as dg
from domain.cursors import CursorCodec
from domain.repositories import Asset as DomainAsset
from graph.catalogue.types import AiModel, Preset
from graph.chunks.types import Chunk
from graph.common.connections import cursor_of
from graph.common.inputs import scalar_fields_input
from graph.common.types import (
    Forbidden,
    InsufficientCredits,
    InvalidInput,
    InvalidState,
    NotFound,
    PageInfo,
    RateLimited,
)
from graph.context import Info
from graph.scalars import JSON

if TYPE_CHECKING:
    from graph.boards.types import Board

strawberry.enum(dg.GenerationStatus, name="GenerationStatus", description="Lifecycle of a generation.")
GenerationStatus = dg.GenerationStatus


@strawberry.enum(description="The role of a stored file of a generation.")
class AssetKind(enum.Enum):
    INPUT = "input"
    OUTPUT = "output"
    THUMBNAIL = "thumbnail"


MAX_URL_SECONDS = 7 * 24 * 3600


def url_seconds(expires_in_seconds: int | None) -> int:
    """How long an asset's URL stays valid for the argument given (the compiled path uses this too)."""
    return min(max(expires_in_seconds or 3600, 60), MAX_URL_SECONDS)


@strawberry.type(description="A stored file of a generation (its output image or video).")
class Asset:
    id: strawberry.ID
    kind: AssetKind
    content_type: str
    size: int
    object_key: strawberry.Private[str]

    @strawberry.field(description="A signed download URL valid for `expiresInSeconds` (60 s to 7 days).")
    async def url(self, info: Info, expires_in_seconds: int | None = 3600) -> str:
        signed = await info.context.services.chunks.asset_url(self.object_key, url_seconds(expires_in_seconds))
        return signed.url

    @classmethod
    def from_domain(cls, asset: DomainAsset) -> Asset:
        return cls(
            id=strawberry.ID(str(asset.id)),
            kind=AssetKind(asset.kind),
            content_type=asset.content_type,
            size=asset.size,
            object_key=asset.object_key,
        )


@strawberry.type(description="Why a generation failed, was canceled or expired.")
class GenerationError:
    code: str
    message: str


@strawberry.type(description="One image or video job.")
class Generation:
    id: strawberry.ID
    status: GenerationStatus
    progress: float = strawberry.field(description="0.0 .. 1.0")
    prompt: str
    params: JSON
    reserved_credits: int
    charged_credits: int
    error: GenerationError | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    entity: strawberry.Private[dg.Generation]

    @strawberry.field
    async def model(self, info: Info) -> AiModel:
        # The loader falls back to the database when this replica's catalogue cache is stale.
        found = await info.context.loaders.model(self.entity.model_id)
        assert found is not None, "a generation always has its model (a foreign key without cascade)"
        return AiModel.from_domain(found)

    @strawberry.field
    async def preset(self, info: Info) -> Preset | None:
        if self.entity.preset_id is None:
            return None
        found = await info.context.loaders.preset(self.entity.preset_id)
        return Preset.from_domain(found) if found else None

    @strawberry.field(description="The board it belongs to, when the viewer is a member.")
    async def board(self, info: Info) -> Annotated[Board, strawberry.lazy("graph.boards.types")] | None:
        from graph.boards.types import Board

        board_id = self.entity.board_id
        viewer = info.context.viewer
        if board_id is None or viewer is None:
            return None
        board = await info.context.loaders.board(board_id)
        members = await info.context.loaders.members(board_id)
        role = next((m.role for m in members if m.user_id == viewer.user_id), None)
        return Board.from_domain(board, role) if board and role else None

    @strawberry.field(description="Input files, in the order given.")
    async def inputs(self, info: Info) -> list[Chunk]:
        return [Chunk.from_domain(c) for c in await info.context.loaders.inputs(self.entity.id)]

    @strawberry.field(description="Output files, copied into our storage.")
    async def outputs(self, info: Info) -> list[Asset]:
        assets = await info.context.loaders.assets(self.entity.id)
        return [Asset.from_domain(a) for a in assets if a.kind == "output"]

    @classmethod
    def from_domain(cls, g: dg.Generation) -> Generation:
        error = GenerationError(code=g.error_code, message=g.error_message or g.error_code) if g.error_code else None
        return cls(
            id=strawberry.ID(str(g.id)),
            status=g.status,
            progress=g.progress,
            prompt=g.prompt,
            params=JSON({k: v for k, v in g.params.items() if not k.startswith("_")}),
            reserved_credits=g.reserved_credits,
            charged_credits=g.charged_credits,
            error=error,
            created_at=g.created_at,
            updated_at=g.updated_at,
            finished_at=g.finished_at,
            entity=g,
        )


@strawberry.type
class GenerationEdge:
    node: Generation
    cursor: str


@strawberry.type(description="A page of generations, newest first.")
class GenerationConnection:
    edges: list[GenerationEdge]
    page_info: PageInfo

    @classmethod
    def from_page(cls, items: list[dg.Generation], has_next: bool, cursors: CursorCodec) -> GenerationConnection:
        edges = [GenerationEdge(node=Generation.from_domain(g), cursor=cursor_of(g, cursors)) for g in items]
        return cls(
            edges=edges, page_info=PageInfo(has_next_page=has_next, end_cursor=edges[-1].cursor if edges else None)
        )


@strawberry.input(description="Narrow a generations list.")
class GenerationFilter:
    status: list[GenerationStatus] | None = None
    board_id: strawberry.ID | None = None
    model_id: strawberry.ID | None = None


@scalar_fields_input
@strawberry.input(description="Start a generation. Replays with the same `idempotencyKey` return the first result.")
class GenerateInput:
    model_id: strawberry.ID
    prompt: str
    preset_id: strawberry.ID | None = None
    board_id: strawberry.ID | None = None
    params: JSON | None = None
    input_chunk_ids: list[strawberry.ID] | None = None
    idempotency_key: str | None = None


@strawberry.type
class GenerateSuccess:
    generation: Generation


@strawberry.type
class CancelSuccess:
    generation: Generation


@strawberry.type(description="A change of a generation, pushed to subscribers.")
class GenerationEvent:
    generation: Generation
    previous_status: GenerationStatus | None
    at: datetime


GenerateResult = Annotated[
    GenerateSuccess | InsufficientCredits | NotFound | Forbidden | InvalidInput | RateLimited,
    strawberry.union("GenerateResult"),
]
CancelGenerationResult = Annotated[
    CancelSuccess | NotFound | Forbidden | InvalidState, strawberry.union("CancelGenerationResult")
]
