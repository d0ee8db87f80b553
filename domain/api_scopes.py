"""Which scope an API key needs for each root field; the one place a new field is given one.

Keys are refused (FORBIDDEN) by every root field this map does not name: a field added
without an entry works with a session only. Fields that must never take a key (signing in
or out, passwords, deleting the account, the data export of the whole account, managing
keys: a key cannot mint keys) are listed in SESSION_ONLY, which says so on purpose; being
absent from FIELD_SCOPES is what refuses them.

Sessions (access tokens from a sign-in) are not restricted by scopes.
"""

from __future__ import annotations

from typing import Final

from domain.api_keys import Scope

#: "Query.<field>" / "Mutation.<field>" / "Subscription.<field>" -> the scope a key needs.
FIELD_SCOPES: Final[dict[str, Scope]] = {
    # reading the account's own things, and every subscription
    "Query.me": Scope.READ,
    "Query.credits": Scope.READ,
    "Query.creditLedger": Scope.READ,
    "Query.models": Scope.READ,
    "Query.presets": Scope.READ,
    "Query.generation": Scope.READ,
    "Query.generations": Scope.READ,
    "Query.boards": Scope.READ,
    "Query.boardsConnection": Scope.READ,
    "Query.board": Scope.READ,
    "Query.myBoardInvitations": Scope.READ,
    "Query.chunk": Scope.READ,
    "Query.chunks": Scope.READ,
    "Subscription.generationUpdated": Scope.READ,
    "Subscription.myGenerationEvents": Scope.READ,
    "Subscription.creditsChanged": Scope.READ,
    "Query.webhookEndpoints": Scope.READ,
    "Query.webhookEndpoint": Scope.READ,
    "Query.webhookDeliveries": Scope.READ,
    # starting and managing work
    "Mutation.generate": Scope.GENERATE,
    "Mutation.cancelGeneration": Scope.GENERATE,
    "Mutation.deleteGeneration": Scope.GENERATE,
    "Mutation.deleteGenerations": Scope.GENERATE,
    "Mutation.createBoard": Scope.GENERATE,
    "Mutation.renameBoard": Scope.GENERATE,
    "Mutation.deleteBoard": Scope.GENERATE,
    "Mutation.leaveBoard": Scope.GENERATE,
    "Mutation.addBoardMember": Scope.GENERATE,
    "Mutation.removeBoardMember": Scope.GENERATE,
    "Mutation.revokeBoardInvitation": Scope.GENERATE,
    "Mutation.acceptBoardInvitation": Scope.GENERATE,
    "Mutation.declineBoardInvitation": Scope.GENERATE,
    "Mutation.redeliverWebhook": Scope.GENERATE,
    # files
    "Mutation.uploadChunk": Scope.UPLOAD,
    "Mutation.requestChunkUpload": Scope.UPLOAD,
    "Mutation.completeChunkUpload": Scope.UPLOAD,
    "Mutation.chunkDownloadUrl": Scope.UPLOAD,
    "Mutation.deleteChunk": Scope.UPLOAD,
    # administration (an administrator's keys only)
    "Query.adminSettings": Scope.ADMIN_READ,
    "Query.adminUsers": Scope.ADMIN_READ,
    "Query.adminUser": Scope.ADMIN_READ,
    "Query.auditLog": Scope.ADMIN_READ,
    "Query.providerHealth": Scope.ADMIN_READ,
    "Mutation.grantCredits": Scope.ADMIN_WRITE,
    "Mutation.upsertModel": Scope.ADMIN_WRITE,
    "Mutation.upsertPreset": Scope.ADMIN_WRITE,
    "Mutation.setAdminSetting": Scope.ADMIN_WRITE,
    "Mutation.suspendUser": Scope.ADMIN_WRITE,
    "Mutation.reinstateUser": Scope.ADMIN_WRITE,
}

#: Refused for keys on purpose (documentation: anything absent from FIELD_SCOPES is refused).
SESSION_ONLY: Final = frozenset(
    {
        "Mutation.register",
        "Mutation.login",
        "Mutation.refreshToken",
        "Mutation.changePassword",
        "Mutation.requestPasswordReset",
        "Mutation.resetPassword",
        "Mutation.logout",
        "Mutation.logoutEverywhere",
        "Mutation.deleteAccount",
        "Mutation.requestDataExport",
        "Query.myDataExports",
        "Query.dataExport",
        "Query.apiKeys",
        "Mutation.createApiKey",
        "Mutation.revokeApiKey",
        # webhook endpoints and signing secrets: a secret is a credential, shown to a session only
        "Mutation.createWebhookEndpoint",
        "Mutation.updateWebhookEndpoint",
        "Mutation.deleteWebhookEndpoint",
        "Mutation.rotateWebhookSecret",
        "Mutation.rotateWebhookSigningSecret",
        # any object by id, data exports and keys among them: a key would need each kind's scope
        "Query.node",
        "Query.nodes",
    }
)

SESSION_ONLY_REFUSAL = "This field needs a signed-in session: API keys are not accepted here."


def required_scope(root_type: str, field_name: str) -> Scope | None:
    """The scope a key needs for the root field, or None: keys are refused there."""
    return FIELD_SCOPES.get(f"{root_type}.{field_name}")


def key_refusal(scopes: frozenset[Scope], root_type: str, field_name: str) -> str | None:
    """Why a key with `scopes` may not call the root field (None: it may)."""
    needed = required_scope(root_type, field_name)
    if needed is None:
        return SESSION_ONLY_REFUSAL
    if needed not in scopes:
        return f"This API key lacks the `{needed.value}` scope this field needs."
    return None
