"""The Relay `Node` interface: an object with a global id that `node(id:)` fetches again."""

from __future__ import annotations

from typing import Final

import strawberry

#: The most ids one `nodes(ids:)` call takes: each id may cost a read of its own kind (the cost
#: of a query multiplies the selection under `nodes` by how many ids it is given, up to this).
MAX_NODES: Final = 20


@strawberry.interface(
    description=(
        "An object with a global id: `Query.node(id:)` (or `nodes(ids:)`) fetches it again by that id, "
        "with the same authorization as the field that gave it (null when not visible to the viewer)."
    )
)
class Node:
    id: strawberry.ID = strawberry.field(description="The object's global id (a UUID, unique across every type).")
