"""`apiKeys`."""

from __future__ import annotations

from typing import Annotated

import strawberry

from graph.api_keys.types import ApiKey
from graph.common.ids import lookup_id
from graph.context import Info
from graph.permissions import IsAuthenticated


@strawberry.type
class ApiKeyQueries:
    @strawberry.field(
        description="The viewer's API keys, revoked and expired ones too, newest first. Administrators may name "
        "another user (`userId`); anyone else gets FORBIDDEN for it. Needs a signed-in session (not a key).",
        permission_classes=[IsAuthenticated],
    )
    async def api_keys(
        self,
        info: Info,
        user_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="Whose keys: administrators only; absent: the viewer's own."),
        ] = None,
    ) -> list[ApiKey]:
        owner = lookup_id(user_id, "user") if user_id is not None else None
        keys = await info.context.services.api_keys.of_user(info.context.require_viewer(), owner)
        return [ApiKey.from_domain(k) for k in keys]
