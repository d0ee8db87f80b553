"""`node(id:)` and `nodes(ids:)`: any object with a global id, authorized as its direct query.

Global ids are UUIDs, unique across kinds, so an id does not say what it names. The kinds
are looked up by id in batches first (graph/loaders.py: one statement per kind for all the
ids of the request, the catalogue from its cache), which only tells the kind; the object is
then read again through the same authorized read as its direct query (`generation(id:)`,
`board(id:)`, `chunk(id:)`, `dataExport(id:)`, `me`, `models`, `presets`, `apiKeys`,
`webhookEndpoint(id:)`; an asset as its generation), so another user's object, a malformed
id and an unknown one all give null.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Annotated

import strawberry

from domain.errors import InvalidInput, NotFound
from domain.users import Principal
from graph.api_keys.types import ApiKey
from graph.auth.types import User
from graph.boards.types import Board
from graph.catalogue.types import AiModel, Preset
from graph.chunks.types import Chunk
from graph.common.node import MAX_NODES, Node
from graph.context import Info
from graph.exports.types import DataExport
from graph.generations.types import Asset, Generation, thumbnails_by_output
from graph.webhooks.types import WebhookEndpoint


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


async def find_nodes(info: Info, ids: Sequence[str]) -> list[Node | None]:
    """The objects `ids` name that the viewer may read, in order; None for the rest."""
    if len(ids) > MAX_NODES:
        raise InvalidInput.single("ids", f"must hold at most {MAX_NODES} ids")
    viewer = info.context.viewer
    services = info.context.services
    # Catalogue entries are public and cached: as `models` (inactive ones for admins) and `presets`.
    admin = viewer is not None and viewer.is_admin
    catalogue: dict[uuid.UUID, Node] = {
        m.id: AiModel.from_domain(m)
        for m in await services.catalogue.models(None, include_inactive=admin, actor=viewer)
    }
    catalogue.update({p.id: Preset.from_domain(p) for p in await services.catalogue.presets(None)})
    parsed = [_uuid(i) for i in ids]
    found = await asyncio.gather(
        *(_none() if i is None else _known(catalogue[i]) if i in catalogue else _node(info, viewer, i) for i in parsed)
    )
    return list(found)


async def _none() -> Node | None:
    return None


async def _known(node: Node) -> Node | None:
    return node


async def _node(info: Info, viewer: Principal | None, node_id: uuid.UUID) -> Node | None:
    services, loaders = info.context.services, info.context.loaders
    if viewer is None:
        return None
    if node_id == viewer.user_id:
        user = await loaders.user(node_id)
        return User.from_domain(user) if user is not None else None
    generation, asset, chunk, board = await asyncio.gather(
        loaders.generations_by_id.load(node_id),
        loaders.assets_by_id.load(node_id),
        loaders.chunks_by_id.load(node_id),
        loaders.board(node_id),
    )
    try:
        if generation is not None:
            return Generation.from_domain(await services.generations.get(viewer, node_id))
        if asset is not None:
            await services.generations.get(viewer, asset.generation_id)  # NotFound unless readable
            siblings = await loaders.assets(asset.generation_id)
            return Asset.from_domain(asset, thumbnails_by_output(siblings).get(asset.id))
        if chunk is not None:
            return Chunk.from_domain(await services.chunks.get(viewer, node_id))
        if board is not None:
            readable, role = await services.boards.get(viewer, node_id)
            return Board.from_domain(readable, role)
    except NotFound:
        return None
    # No batched lookup for exports, keys and webhook endpoints (a handful per user): asked last,
    # one indexed read each.
    try:
        return DataExport.from_domain(await services.data_exports.get(viewer, node_id))
    except NotFound:
        pass
    try:
        return ApiKey.from_domain(await services.api_keys.get(viewer, node_id))
    except NotFound:
        pass
    try:
        return WebhookEndpoint.from_domain(await services.webhooks.endpoint(viewer, node_id))
    except NotFound:
        return None


@strawberry.type
class NodeQueries:
    @strawberry.field(
        description=(
            "The object with this global id, fetched with the same authorization as its direct query: "
            "null when there is none, when the viewer may not read it, or when the id is malformed "
            "(the three are indistinguishable). Anonymous callers reach models and presets only."
        )
    )
    async def node(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="A global id.")]
    ) -> Node | None:
        return (await find_nodes(info, [id]))[0]

    @strawberry.field(
        description=(
            f"`node(id:)` for each of up to {MAX_NODES} ids, in the same order (null where `node` would be null); "
            "more ids are refused with an INVALID_INPUT error."
        )
    )
    async def nodes(
        self,
        info: Info,
        ids: Annotated[list[strawberry.ID], strawberry.argument(description=f"At most {MAX_NODES} global ids.")],
    ) -> list[Node | None]:
        return await find_nodes(info, ids)
