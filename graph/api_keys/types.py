"""GraphQL types of API keys: the key as listed (never its secret), the inputs and results of create and revoke."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Self

import strawberry

from domain import api_keys as dk
from graph.common.node import Node
from graph.common.types import Forbidden, InvalidInput, NotFound, QuotaExceeded

_SCOPES = ", ".join(f"`{s.value}`" for s in dk.Scope)


@strawberry.type(description="An API key, as its owner (or an administrator) sees it: never its secret.")
class ApiKey(Node):
    name: str = strawberry.field(description="The name its owner gave it.")
    prefix: str = strawberry.field(
        description="The key's public beginning (`ghk_` and its lookup id): it tells keys apart in lists and logs."
    )
    scopes: list[str] = strawberry.field(description=f"What the key may do: some of {_SCOPES}.")
    created_at: datetime
    expires_at: datetime | None = strawberry.field(description="When the key stops working; null: never.")
    last_used_at: datetime | None = strawberry.field(
        description="About when the key was last used: written in batches, so it may lag by up to a minute; "
        "null: not used yet."
    )
    revoked_at: datetime | None = strawberry.field(description="When the key was revoked; null: not revoked.")

    @classmethod
    def from_domain(cls, key: dk.ApiKey) -> Self:
        return cls(
            id=strawberry.ID(str(key.id)),
            name=key.name,
            prefix=key.prefix,
            scopes=sorted(s.value for s in key.scopes),
            created_at=key.created_at,
            expires_at=key.expires_at,
            last_used_at=key.last_used_at,
            revoked_at=key.revoked_at,
        )


@strawberry.input(description="A new API key.")
class CreateApiKeyInput:
    name: str = strawberry.field(description=f"1-{dk.MAX_NAME_LENGTH} characters, to tell the keys apart.")
    scopes: list[str] = strawberry.field(
        description=f"What the key may do, at least one of {_SCOPES}. `admin:read` and `admin:write` are for "
        "an administrator's keys only. docs/clients.md lists the fields each scope opens."
    )
    expires_at: datetime | None = strawberry.field(
        default=None, description="When the key stops working (in the future); null or absent: never."
    )
    user_id: strawberry.ID | None = strawberry.field(
        default=None, description="Whose key it is: administrators only; absent: the viewer's own."
    )


@strawberry.type(description="The new key. `key` is shown this once: it is stored only as a hash.")
class CreateApiKeySuccess:
    api_key: ApiKey
    key: str = strawberry.field(
        description="The whole key, to send as `Authorization: Bearer <key>`. It cannot be shown again."
    )


@strawberry.type(description="The key after revokeApiKey: it is refused from now on, on every replica.")
class RevokeApiKeySuccess:
    api_key: ApiKey
    changed: bool = strawberry.field(description="False when it was revoked already (nothing changed).")


CreateApiKeyResult = Annotated[
    CreateApiKeySuccess | InvalidInput | NotFound | Forbidden | QuotaExceeded, strawberry.union("CreateApiKeyResult")
]
RevokeApiKeyResult = Annotated[RevokeApiKeySuccess | NotFound | Forbidden, strawberry.union("RevokeApiKeyResult")]
