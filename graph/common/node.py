"""The Relay `Node` interface: an object with a global id that `node(id:)` fetches again."""

from __future__ import annotations

import strawberry


@strawberry.interface(
    description=(
        "An object with a global id: `Query.node(id:)` (or `nodes(ids:)`) fetches it again by that id, "
        "with the same authorization as the field that gave it (null when not visible to the viewer)."
    )
)
class Node:
    id: strawberry.ID = strawberry.field(description="The object's global id (a UUID, unique across every type).")
