"""`me`."""

from __future__ import annotations

import strawberry

from graph.auth.types import User
from graph.context import Info


@strawberry.type
class AuthQueries:
    @strawberry.field(description="The signed-in account, or null when anonymous.")
    async def me(self, info: Info) -> User | None:
        viewer = info.context.viewer
        if viewer is None:
            return None
        user = await info.context.loaders.user(viewer.user_id)
        return User.from_domain(user) if user else None
