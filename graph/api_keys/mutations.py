"""createApiKey, revokeApiKey (a signed-in session's: a key cannot manage keys)."""

from __future__ import annotations

from typing import Annotated

import strawberry

from domain.audit import AuditAction
from graph.admin.audited_ids import audited_id
from graph.api_keys.types import (
    ApiKey,
    CreateApiKeyInput,
    CreateApiKeyResult,
    CreateApiKeySuccess,
    RevokeApiKeyResult,
    RevokeApiKeySuccess,
)
from graph.common.ids import lookup_id
from graph.context import Info
from graph.permissions import IsAuthenticated
from graph.request_origin import origin_of


@strawberry.type
class ApiKeyMutations:
    @strawberry.mutation(
        description="Create an API key (at most 50 live keys per account: QuotaExceeded). The answer holds the "
        "whole key, shown this once. Administrators may create one for another user (`userId`, audited).",
        permission_classes=[IsAuthenticated],
    )
    async def create_api_key(
        self,
        info: Info,
        input: Annotated[CreateApiKeyInput, strawberry.argument(description="The key's name, scopes and expiry.")],
    ) -> CreateApiKeyResult:
        owner = None
        if input.user_id is not None:
            owner = await audited_id(info, AuditAction.CREATE_API_KEY, input.user_id, lambda v: lookup_id(v, "user"))
        created = await info.context.services.api_keys.create(
            info.context.require_viewer(),
            user_id=owner,
            name=input.name,
            scopes=list(input.scopes),
            expires_at=input.expires_at,
            origin=origin_of(info),
        )
        return CreateApiKeySuccess(api_key=ApiKey.from_domain(created.key), key=created.token)

    @strawberry.mutation(
        description="Revoke an API key: it is refused at once on every replica and its open subscriptions are "
        "closed (4401). The viewer's own keys; administrators any (audited). Again: success, `changed` false.",
        permission_classes=[IsAuthenticated],
    )
    async def revoke_api_key(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="The key's id.")]
    ) -> RevokeApiKeyResult:
        key_id = await audited_id(info, AuditAction.REVOKE_API_KEY, id, lambda v: lookup_id(v, "apiKey"))
        revoked = await info.context.services.api_keys.revoke(info.context.require_viewer(), key_id, origin_of(info))
        return RevokeApiKeySuccess(api_key=ApiKey.from_domain(revoked.key), changed=revoked.changed)
