"""GraphQL types of the generations area."""

from __future__ import annotations

import enum
import functools
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from domain import generations as dg
from domain import media
from domain.cursors import CursorCodec
from domain.pagination import Page
from domain.repositories import Asset as DomainAsset
from graph.admin.provider_types import ProviderAttempt
from graph.catalogue.types import AiModel, Preset
from graph.chunks.types import Chunk
from graph.common.connections import cursor_of, page_info
from graph.common.inputs import scalar_fields_input
from graph.common.node import Node
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
from graph.permissions import IsAdmin
from graph.scalars import JSON
from graph.webhooks.types import GenerationWebhookInput

if TYPE_CHECKING:
    from graph.boards.types import Board

strawberry.enum(dg.GenerationStatus, name="GenerationStatus", description="Lifecycle of a generation.")
GenerationStatus = dg.GenerationStatus


@strawberry.enum(description="The role of a stored file of a generation.")
class AssetKind(enum.Enum):
    INPUT = "input"
    OUTPUT = "output"
    THUMBNAIL = "thumbnail"


@strawberry.enum(description="Where an output's thumbnail stands.")
class ThumbnailStatus(enum.Enum):
    PENDING = strawberry.enum_value(
        media.ThumbnailState.PENDING.value,
        description="Being made after the generation succeeded; `thumbnail` is null until it is READY.",
    )
    READY = strawberry.enum_value(media.ThumbnailState.READY.value, description="Made: `thumbnail` holds it.")
    FAILED = strawberry.enum_value(
        media.ThumbnailState.FAILED.value,
        description="Could not be made (after retries); the output itself is fine. Show the output or a placeholder.",
    )


MAX_URL_SECONDS = 7 * 24 * 3600


def url_seconds(expires_in_seconds: int | None) -> int:
    """How long an asset's URL stays valid for the argument given (the compiled path uses this too)."""
    return min(max(expires_in_seconds or 3600, 60), MAX_URL_SECONDS)


THUMBNAIL_DESCRIPTION = (
    "This output's preview, once made (null while `thumbnailStatus` is PENDING or FAILED, and for assets "
    f"that never get one): a WebP image ({media.THUMBNAIL_TYPE}) at most {media.THUMBNAIL_MAX_SIDE} px on its long side "
    "(a poster frame for a video). Show it in grids instead of the full file."
)


@strawberry.type(
    description=(
        "A stored file of a generation: an output image or video (`kind` OUTPUT), or an output's thumbnail "
        "(`kind` THUMBNAIL, reached through `thumbnail`)."
    )
)
class Asset(Node):
    kind: AssetKind
    content_type: str = strawberry.field(
        description=(
            "The media type sniffed from the stored bytes (image/png, image/jpeg, image/webp, image/gif, "
            "video/mp4, video/webm, video/quicktime), not the type the provider claimed; downloads are served "
            "with it. Assets stored before outputs were verified keep the type recorded then."
        )
    )
    size: int = strawberry.field(description="Size in bytes.")
    width: int | None = strawberry.field(
        description="Width in pixels, as probed from the bytes; null for assets stored before outputs were verified."
    )
    height: int | None = strawberry.field(
        description="Height in pixels, as probed from the bytes; null for assets stored before outputs were verified."
    )
    duration_seconds: float | None = strawberry.field(
        description="Length of a video in seconds; null for images and for assets stored before outputs were verified."
    )
    thumbnail: Asset | None = strawberry.field(description=THUMBNAIL_DESCRIPTION)
    thumbnail_status: ThumbnailStatus | None = strawberry.field(
        description=(
            "Where this output's thumbnail stands; null for assets that never get one (thumbnails themselves). "
            "Outputs stored before thumbnails existed get one too (PENDING until a worker makes it). Each change "
            "is announced on the subscriptions as one more event of the generation (status SUCCEEDED)."
        )
    )
    object_key: strawberry.Private[str]

    @strawberry.field(
        description=(
            "A signed download URL valid for `expiresInSeconds` (60 s to 7 days). It downloads as an attachment "
            '(`Content-Disposition: attachment; filename="<generation id>-<n>.<ext>"`, `-thumbnail` added for '
            "a thumbnail); for an <img> or <video> element the browser still shows it inline."
        )
    )
    async def url(
        self,
        info: Info,
        expires_in_seconds: Annotated[
            int | None,
            strawberry.argument(
                description="How long the URL stays valid, in seconds (kept within 60 to 604800); null: one hour."
            ),
        ] = 3600,
    ) -> str:
        signed = await info.context.services.chunks.asset_url(self.object_key, url_seconds(expires_in_seconds))
        return signed.url

    @classmethod
    def from_domain(cls, asset: DomainAsset, thumbnail: DomainAsset | None = None) -> Asset:
        """`thumbnail`: the output's thumbnail asset, when one was made (`thumbnails_by_output`)."""
        return cls(
            id=strawberry.ID(str(asset.id)),
            kind=AssetKind(asset.kind),
            content_type=asset.content_type,
            size=asset.size,
            width=asset.width,
            height=asset.height,
            duration_seconds=asset.duration_seconds,
            thumbnail=cls.from_domain(thumbnail) if thumbnail is not None else None,
            thumbnail_status=ThumbnailStatus(asset.thumbnail_state) if asset.thumbnail_state else None,
            object_key=asset.object_key,
        )


def thumbnails_by_output(assets: Sequence[DomainAsset]) -> dict[uuid.UUID, DomainAsset]:
    """Each output's thumbnail among a generation's assets, by the output's id: the first by
    (position, id) should there be several (the compiled path picks the same one)."""
    found: dict[uuid.UUID, DomainAsset] = {}
    for asset in sorted(assets, key=lambda a: (a.position, a.id)):
        if asset.kind == media.THUMBNAIL_KIND and asset.source_id is not None:
            found.setdefault(asset.source_id, asset)
    return found


@strawberry.type(description="Why a generation failed, was canceled or expired.")
class GenerationError:
    code: str
    message: str


@strawberry.type(description="One image or video job.")
class Generation(Node):
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

    @strawberry.field(
        description=(
            "Output files, copied into our storage and verified (type sniffed, geometry probed), in order. "
            "Thumbnails are not listed here: each output has its own `thumbnail`."
        )
    )
    async def outputs(self, info: Info) -> list[Asset]:
        # Thumbnails come from the same batch as the outputs: no statement per output.
        assets = await info.context.loaders.assets(self.entity.id)
        thumbnails = thumbnails_by_output(assets)
        return [Asset.from_domain(a, thumbnails.get(a.id)) for a in assets if a.kind == "output"]

    @strawberry.field(
        description=(
            "The provider running it (the route that took it); while it is submitted after an uncertain submit "
            "(a job may exist there), that route's provider, which its later attempts go to; null before either. "
            "Admins only."
        ),
        permission_classes=[IsAdmin],
    )
    def provider(self) -> str | None:
        return self.entity.provider

    @strawberry.field(
        description=(
            "The provider routes tried (or skipped) while it was submitted, oldest first: the latest 100. Attempts "
            "that only skipped the same routes in a row are one entry, from the first one's start to the last one's end. "
            "Admins only."
        ),
        permission_classes=[IsAdmin],
    )
    async def provider_attempts(self, info: Info) -> list[ProviderAttempt]:
        services, viewer = info.context.services, info.context.require_viewer()
        fetch = functools.partial(services.admin.provider_attempts, viewer)
        return [
            ProviderAttempt.from_domain(a) for a in await info.context.loaders.provider_attempts(fetch, self.entity.id)
        ]

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
    def from_page(cls, page: Page[dg.Generation], cursors: CursorCodec) -> GenerationConnection:
        edges = [GenerationEdge(node=Generation.from_domain(g), cursor=cursor_of(g, cursors)) for g in page.items]
        return cls(edges=edges, page_info=page_info(page, [e.cursor for e in edges]))


@strawberry.input(description="Narrow a generations list.")
class GenerationFilter:
    status: list[GenerationStatus] | None = strawberry.field(
        default=None, description="Only generations in one of these statuses."
    )
    board_id: strawberry.ID | None = strawberry.field(default=None, description="Only generations of this board.")
    model_id: strawberry.ID | None = strawberry.field(default=None, description="Only generations of this model.")


@scalar_fields_input
@strawberry.input(description="Start a generation. Replays with the same `idempotencyKey` return the first result.")
class GenerateInput:
    model_id: strawberry.ID = strawberry.field(description="The model to run (an id from `models`).")
    prompt: str = strawberry.field(description="What to generate: non-empty text of at most 4000 characters.")
    preset_id: strawberry.ID | None = strawberry.field(
        default=None, description="A preset of the same model whose params apply first; `params` override them."
    )
    board_id: strawberry.ID | None = strawberry.field(
        default=None, description="A board (EDITOR or OWNER) the generation is shared in."
    )
    params: JSON | None = strawberry.field(
        default=None,
        description="Model parameters as a JSON object (e.g. width, height, durationSeconds), checked against the model's capabilities.",
    )
    input_chunk_ids: list[strawberry.ID] | None = strawberry.field(
        default=None,
        description="Uploaded files (READY chunks of the viewer) to give the model, as many as its capabilities allow.",
    )
    idempotency_key: str | None = strawberry.field(
        default=None,
        description="A client-chosen key (1-128 characters): a retry with it returns the first call's generation instead of starting another.",
    )
    webhook: GenerationWebhookInput | None = strawberry.field(
        default=None,
        description="Messages about this generation alone, to this URL (besides your webhook endpoints). Needs your "
        "webhook signing secret (rotateWebhookSigningSecret) first: without one, InvalidInput on `webhook`.",
    )


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


@strawberry.type(description="The generation is deleted, with its outputs and thumbnails (their files follow shortly).")
class DeleteGenerationSuccess:
    generation_id: strawberry.ID


GenerationDeletionError = Annotated[NotFound | InvalidState, strawberry.union("GenerationDeletionError")]


@strawberry.type(description="What became of one id of a deleteGenerations request.")
class GenerationDeletion:
    generation_id: strawberry.ID
    deleted: bool
    error: GenerationDeletionError | None = strawberry.field(
        description="Why it was not deleted: NotFound (not the viewer's, or no such generation), "
        "InvalidState (not ended yet: cancel it first). Null when deleted."
    )


@strawberry.type(description="One outcome per distinct requested id, in the order requested.")
class DeleteGenerationsSuccess:
    results: list[GenerationDeletion]
    deleted_count: int


DeleteGenerationResult = Annotated[
    DeleteGenerationSuccess | NotFound | InvalidState, strawberry.union("DeleteGenerationResult")
]
DeleteGenerationsResult = Annotated[
    DeleteGenerationsSuccess | InvalidInput, strawberry.union("DeleteGenerationsResult")
]
