"""The authorization matrix: every root field of the schema x every persona -> the expected outcome.

The rows are checked against the schema itself, so a new Query/Mutation/Subscription
field without a row fails `test_every_root_field_has_a_row`.

Personas: anonymous; other (a user with no relation to the subject); viewer, editor and
owner of the subject board; admin (role ADMIN, not a board member). The subject: a board
owned by `owner` with `editor` and `viewer`, a generation `owner` started in it (the
simulated provider hangs, so it stays cancellable) and, where a row needs one, a chunk of
`owner`.

Outcomes: a GraphQL error's `extensions.code` (UNAUTHENTICATED, FORBIDDEN); a result's
`__typename` (a union member such as NotFound, or the object type); `null`; for lists and
connections `sees` / `hidden` (whether the subject is in it).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from domain.use_cases.auth import ensure_admin
from graph.schema import build_schema
from tests.fixtures.app import register_user
from tests.integration.asgi_websocket import AsgiWebSocket, WebSocketClosed
from tests.integration.board_world import PASSWORD, World, module_world, sign_in, with_board

pytestmark = pytest.mark.postgres

PERSONAS = ("anonymous", "other", "viewer", "editor", "owner", "admin")
ANON_REFUSED = "UNAUTHENTICATED"


@dataclass
class Subject:
    world: World
    chunk_id: str = ""
    export_id: str = ""
    endpoint_id: str = ""
    delivery_id: str = ""
    #: The generation whose message `delivery_id` carries (the owner's endpoint collects every cell's messages).
    delivery_generation_id: str = ""
    ids: set[str] = field(default_factory=set)


Variables = Callable[[Subject, str], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Row:
    document: str
    expect: tuple[str, str, str, str, str, str]  # anonymous, other, viewer, editor, owner, admin
    variables: Variables | None = None
    chunk: str = ""  # "", "ready" or "pending": the subject chunk this row needs
    upload: bool = False
    mutates: bool = False  # changes the subject: every cell gets a fresh one
    #: Ends the caller's sessions: "session", each persona calls with a sign-in of its own; "account",
    #: with a stand-in account of the persona's role (ending all its sessions spares the world's tokens).
    own_session: str = ""


async def no_variables(subject: Subject, persona: str) -> dict[str, Any]:
    return {}


def of(**values: Callable[[Subject, str], Any]) -> Variables:
    async def build(subject: Subject, persona: str) -> dict[str, Any]:
        out = {}
        for name, make in values.items():
            made = make(subject, persona)
            out[name] = await made if isinstance(made, Awaitable) else made
        return out

    return build


def email_of(subject: Subject, persona: str) -> str:
    return subject.world.emails["other" if persona == "anonymous" else persona]


async def refresh_token_of(subject: Subject, persona: str) -> str:
    body = await subject.world.data(
        "anonymous",
        'mutation L($e: String!) { login(input: {email: $e, password: "correct horse battery"}) '
        "{ ... on AuthPayload { refreshToken } } }",
        {"e": email_of(subject, persona)},
    )
    token: str = body["login"]["refreshToken"]
    return token


BOARD = lambda s, p: s.world.board_id  # noqa: E731


async def bystander(subject: Subject) -> str:
    """A new account of nobody's: what the suspension rows act on."""
    body = await subject.world.data(
        "anonymous",
        'mutation($e: String!) { register(input: {email: $e, password: "correct horse battery"}) '
        "{ ... on AuthPayload { user { id } } } }",
        {"e": f"bystander-{uuid.uuid4().hex[:8]}@example.com"},
    )
    user_id: str = body["register"]["user"]["id"]
    return user_id


async def invited_board(subject: Subject, persona: str) -> str:
    """The subject board, after its owner invited `other` as an EDITOR (pending)."""
    body = await subject.world.data(
        "owner",
        "mutation($b: ID!, $e: String!) { addBoardMember(input: {boardId: $b, email: $e, role: EDITOR}) "
        "{ __typename } }",
        {"b": subject.world.board_id, "e": subject.world.emails["other"]},
    )
    assert body["addBoardMember"]["__typename"] == "BoardSuccess", body
    return subject.world.board_id


async def owners_export(subject: Subject, persona: str) -> str:
    """The owner's data export (requested once per subject)."""
    if not subject.export_id:
        body = await subject.world.data(
            "owner", "mutation { requestDataExport { ... on RequestDataExportSuccess { export { id } } } }"
        )
        subject.export_id = body["requestDataExport"]["export"]["id"]
        subject.ids.add(subject.export_id)
    return subject.export_id


async def owners_api_key(subject: Subject, persona: str) -> str:
    """A fresh API key of the owner's (each cell revokes its own)."""
    body = await subject.world.data(
        "owner",
        'mutation { createApiKey(input: {name: "matrix", scopes: ["read"]}) '
        "{ ... on CreateApiKeySuccess { apiKey { id } } } }",
    )
    key_id: str = body["createApiKey"]["apiKey"]["id"]
    return key_id


async def owners_endpoint(subject: Subject, persona: str) -> str:
    """The owner's account-level webhook endpoint (made once per subject)."""
    if not subject.endpoint_id:
        body = await subject.world.data(
            "owner",
            'mutation { createWebhookEndpoint(input: {url: "http://127.0.0.1:9/matrix", '
            "events: [GENERATION_STARTED, GENERATION_COMPLETED]}) "
            "{ __typename ... on CreateWebhookEndpointSuccess { endpoint { id } } } }",
        )
        subject.endpoint_id = body["createWebhookEndpoint"]["endpoint"]["id"]
        subject.ids.add(subject.endpoint_id)
    return subject.endpoint_id


async def owners_delivery(subject: Subject, persona: str) -> str:
    """A delivery to the owner's endpoint: the message of a generation the owner started and cancelled."""
    if not subject.delivery_id:
        await owners_endpoint(subject, persona)
        world = subject.world
        started = await world.data(
            "owner",
            'mutation($m: ID!) { generate(input: {modelId: $m, prompt: "hook"}) '
            "{ ... on GenerateSuccess { generation { id } } } }",
            {"m": world.model_id},
        )
        generation_id = started["generate"]["generation"]["id"]
        await world.data(
            "owner", "mutation($id: ID!) { cancelGeneration(id: $id) { __typename } }", {"id": generation_id}
        )
        body = await world.data(
            "owner",
            "query($e: ID!, $g: ID!) { webhookDeliveries(first: 5, filter: {endpointId: $e, generationId: $g}) "
            "{ edges { node { id } } } }",
            {"e": subject.endpoint_id, "g": generation_id},
        )
        edges = body["webhookDeliveries"]["edges"]
        assert edges, body
        subject.delivery_id = edges[0]["node"]["id"]
        subject.delivery_generation_id = generation_id
        subject.ids.add(subject.delivery_id)
    return subject.delivery_id


GENERATION = lambda s, p: s.world.generation_id  # noqa: E731
CHUNK = lambda s, p: s.chunk_id  # noqa: E731
MODEL = lambda s, p: s.world.model_id  # noqa: E731
FRESH = lambda s, p: uuid.uuid4().hex[:10]  # noqa: E731

U = ANON_REFUSED
F = "FORBIDDEN"
ROWS: dict[str, Row] = {
    # ---------------------------------------------------------------- queries
    #                                                                   anonymous  other  viewer  editor  owner  admin
    "Query.me": Row("query { me { __typename } }", ("null", "User", "User", "User", "User", "User")),
    "Query.credits": Row("query { credits { __typename } }", (U, *["CreditBalance"] * 5)),  # type: ignore[arg-type]
    "Query.creditLedger": Row("query { creditLedger { __typename } }", (U, *["LedgerConnection"] * 5)),  # type: ignore[arg-type]
    "Query.models": Row("query { models { id } }", ("sees",) * 6),  # type: ignore[arg-type]
    "Query.presets": Row("query { presets { id } }", ("sees",) * 6),  # type: ignore[arg-type]
    "Query.generation": Row(
        "query($id: ID!) { generation(id: $id) { __typename } }",
        (U, "null", "Generation", "Generation", "Generation", "Generation"),
        of(id=GENERATION),
    ),
    "Query.generations": Row(
        "query { generations(first: 100) { edges { node { id } } } }", (U, "hidden", "sees", "sees", "sees", "hidden")
    ),
    "Query.boards": Row("query { boards { id } }", (U, "hidden", "sees", "sees", "sees", "hidden")),
    "Query.board": Row(
        "query($id: ID!) { board(id: $id) { __typename } }",
        (U, "null", "Board", "Board", "Board", "null"),
        of(id=BOARD),
    ),
    "Query.chunk": Row(
        "query($id: ID!) { chunk(id: $id) { __typename } }",
        (U, "null", "null", "null", "Chunk", "null"),
        of(id=CHUNK),
        chunk="ready",
    ),
    "Query.chunks": Row(
        "query { chunks(first: 100) { edges { node { id } } } }",
        (U, "hidden", "hidden", "hidden", "sees", "hidden"),
        chunk="ready",
    ),
    "Query.myBoardInvitations": Row(  # only the invitee (other) has one pending
        "query { myBoardInvitations { boardId } }",
        (U, "list", "hidden", "hidden", "hidden", "hidden"),
        of(b=invited_board),
        mutates=True,
    ),
    "Query.myDataExports": Row(
        "query { myDataExports { id } }", (U, "hidden", "hidden", "hidden", "sees", "hidden"), of(x=owners_export)
    ),
    "Query.dataExport": Row(
        "query($id: ID!) { dataExport(id: $id) { __typename } }",
        (U, "NotFound", "NotFound", "NotFound", "DataExport", "NotFound"),
        of(id=owners_export),
    ),
    "Query.adminSettings": Row("query { adminSettings { key } }", (U, F, F, F, F, "list")),
    "Query.adminUsers": Row("query { adminUsers { __typename } }", (U, F, F, F, F, "AdminUserConnection")),
    "Query.adminUser": Row(
        "query($id: ID!) { adminUser(id: $id) { __typename } }",
        (U, F, F, F, F, "AdminUserDetails"),
        of(id=lambda s, p: s.world.user_ids["owner"]),
    ),
    "Query.auditLog": Row("query { auditLog { __typename } }", (U, F, F, F, F, "AuditEntryConnection")),
    "Query.providerHealth": Row("query { providerHealth { provider } }", (U, F, F, F, F, "list")),
    "Query.boardsConnection": Row(
        "query { boardsConnection(first: 100) { edges { node { id } } } }",
        (U, "hidden", "sees", "sees", "sees", "hidden"),
    ),
    # any object by id, authorized as its own query: a board's generation, and an endpoint only its owner sees
    "Query.node": Row(
        "query($id: ID!) { node(id: $id) { __typename } }",
        ("null", "null", "Generation", "Generation", "Generation", "Generation"),
        of(id=GENERATION),
    ),
    "Query.nodes": Row(
        "query($id: ID!) { nodes(ids: [$id]) { id } }",
        ("hidden", "hidden", "hidden", "hidden", "sees", "hidden"),
        of(id=owners_endpoint),
    ),
    # ---------------------------------------------------------------- mutations: anyone
    "Mutation.register": Row(
        'mutation($e: String!) { register(input: {email: $e, password: "correct horse battery"}) { __typename } }',
        ("AuthPayload",) * 6,  # type: ignore[arg-type]
        of(e=lambda s, p: f"new-{uuid.uuid4().hex[:8]}@example.com"),
    ),
    "Mutation.login": Row(
        'mutation($e: String!) { login(input: {email: $e, password: "correct horse battery"}) { __typename } }',
        ("AuthPayload",) * 6,  # type: ignore[arg-type]
        of(e=email_of),
    ),
    "Mutation.refreshToken": Row(
        "mutation($t: String!) { refreshToken(refreshToken: $t) { __typename } }",
        ("AuthPayload",) * 6,  # type: ignore[arg-type]
        of(t=refresh_token_of),
    ),
    # ---------------------------------------------------------------- generations
    "Mutation.generate": Row(
        'mutation($m: ID!, $b: ID) { generate(input: {modelId: $m, prompt: "p", boardId: $b}) { __typename } }',
        (U, "NotFound", "Forbidden", "GenerateSuccess", "GenerateSuccess", "NotFound"),
        of(m=MODEL, b=BOARD),
    ),
    "Mutation.cancelGeneration": Row(
        "mutation($id: ID!) { cancelGeneration(id: $id) { __typename } }",
        (U, "NotFound", "Forbidden", "CancelSuccess", "CancelSuccess", "CancelSuccess"),
        of(id=GENERATION),
        mutates=True,
    ),
    "Mutation.deleteGeneration": Row(  # the subject generation is running: its owner is told to cancel first
        "mutation($id: ID!) { deleteGeneration(id: $id) { __typename } }",
        (U, "NotFound", "NotFound", "NotFound", "InvalidState", "NotFound"),
        of(id=GENERATION),
    ),
    "Mutation.deleteGenerations": Row(  # per-id outcomes inside the success
        "mutation($id: ID!) { deleteGenerations(ids: [$id]) { __typename } }",
        (U, *["DeleteGenerationsSuccess"] * 5),  # type: ignore[arg-type]
        of(id=GENERATION),
    ),
    # ---------------------------------------------------------------- chunks (never shared through boards)
    "Mutation.uploadChunk": Row(
        "mutation($file: Upload!) { uploadChunk(file: $file) { __typename } }",
        (U, *["UploadChunkSuccess"] * 5),  # type: ignore[arg-type]
        upload=True,
    ),
    "Mutation.requestChunkUpload": Row(
        'mutation { requestChunkUpload(input: {filename: "a.png", contentType: "image/png", size: 5}) { __typename } }',
        (U, *["ChunkUploadTicket"] * 5),  # type: ignore[arg-type]
    ),
    "Mutation.completeChunkUpload": Row(
        "mutation($id: ID!) { completeChunkUpload(id: $id) { __typename } }",
        (U, "NotFound", "NotFound", "NotFound", "InvalidState", "NotFound"),
        of(id=CHUNK),
        chunk="pending",
    ),
    "Mutation.chunkDownloadUrl": Row(
        "mutation($id: ID!) { chunkDownloadUrl(id: $id) { __typename } }",
        (U, "NotFound", "NotFound", "NotFound", "DownloadUrl", "NotFound"),
        of(id=CHUNK),
        chunk="ready",
    ),
    "Mutation.deleteChunk": Row(
        "mutation($id: ID!) { deleteChunk(id: $id) { __typename } }",
        (U, "NotFound", "NotFound", "NotFound", "DeleteChunkSuccess", "NotFound"),
        of(id=CHUNK),
        chunk="ready",
        mutates=True,
    ),
    # ---------------------------------------------------------------- data exports (never shared)
    "Mutation.requestDataExport": Row(
        "mutation { requestDataExport { __typename } }",
        (U, *["RequestDataExportSuccess"] * 5),  # type: ignore[arg-type]
    ),
    # ---------------------------------------------------------------- boards
    "Mutation.createBoard": Row(
        'mutation { createBoard(input: {name: "mine"}) { __typename } }',
        (U, *["BoardSuccess"] * 5),  # type: ignore[arg-type]
    ),
    "Mutation.addBoardMember": Row(
        "mutation($b: ID!, $e: String!) { addBoardMember(input: {boardId: $b, email: $e, role: VIEWER}) "
        "{ __typename } }",
        (U, "NotFound", "Forbidden", "Forbidden", "BoardSuccess", "NotFound"),
        of(b=BOARD, e=lambda s, p: s.world.emails["other"]),
        mutates=True,
    ),
    "Mutation.removeBoardMember": Row(  # the target is the viewer: for the viewer itself, that is leaving
        "mutation($b: ID!, $u: ID!) { removeBoardMember(input: {boardId: $b, userId: $u}) { __typename } }",
        (U, "NotFound", "BoardSuccess", "Forbidden", "BoardSuccess", "NotFound"),
        of(b=BOARD, u=lambda s, p: s.world.user_ids["viewer"]),
        mutates=True,
    ),
    "Mutation.revokeBoardInvitation": Row(
        "mutation($b: ID!, $e: String!) { revokeBoardInvitation(input: {boardId: $b, email: $e}) { __typename } }",
        (U, "NotFound", "Forbidden", "Forbidden", "BoardSuccess", "NotFound"),
        of(b=invited_board, e=lambda s, p: s.world.emails["other"]),
        mutates=True,
    ),
    "Mutation.acceptBoardInvitation": Row(  # members have no invitation of their own to accept
        "mutation($b: ID!) { acceptBoardInvitation(boardId: $b) { __typename } }",
        (U, "BoardSuccess", "NotFound", "NotFound", "NotFound", "NotFound"),
        of(b=invited_board),
        mutates=True,
    ),
    "Mutation.declineBoardInvitation": Row(
        "mutation($b: ID!) { declineBoardInvitation(boardId: $b) { __typename } }",
        (U, "DeclineBoardInvitationSuccess", "NotFound", "NotFound", "NotFound", "NotFound"),
        of(b=invited_board),
        mutates=True,
    ),
    "Mutation.renameBoard": Row(
        'mutation($b: ID!) { renameBoard(input: {boardId: $b, name: "renamed"}) { __typename } }',
        (U, "NotFound", "Forbidden", "Forbidden", "BoardSuccess", "NotFound"),
        of(b=BOARD),
        mutates=True,
    ),
    "Mutation.deleteBoard": Row(
        "mutation($b: ID!) { deleteBoard(id: $b) { __typename } }",
        (U, "NotFound", "Forbidden", "Forbidden", "DeleteBoardSuccess", "NotFound"),
        of(b=BOARD),
        mutates=True,
    ),
    "Mutation.leaveBoard": Row(  # the owner is the board's only OWNER
        "mutation($b: ID!) { leaveBoard(boardId: $b) { __typename } }",
        (U, "NotFound", "LeaveBoardSuccess", "LeaveBoardSuccess", "InvalidState", "NotFound"),
        of(b=BOARD),
        mutates=True,
    ),
    "Mutation.changePassword": Row(  # with a wrong current password: the personas keep theirs
        'mutation { changePassword(input: {currentPassword: "not it at all", newPassword: "x new passphrase"}) '
        "{ __typename } }",
        (U, *["InvalidCredentials"] * 5),  # type: ignore[arg-type]
    ),
    "Mutation.requestPasswordReset": Row(
        "mutation($e: String!) { requestPasswordReset(email: $e) { __typename } }",
        ("RequestPasswordResetSuccess",) * 6,  # type: ignore[arg-type]
        of(e=email_of),
    ),
    "Mutation.resetPassword": Row(
        'mutation { resetPassword(input: {token: "not-a-token", newPassword: "x new passphrase"}) { __typename } }',
        ("InvalidCredentials",) * 6,  # type: ignore[arg-type]
    ),
    "Mutation.logout": Row(
        "mutation { logout { __typename } }",
        (U, *["LogoutSuccess"] * 5),  # type: ignore[arg-type]
        own_session="session",
    ),
    "Mutation.logoutEverywhere": Row(
        "mutation { logoutEverywhere { __typename } }",
        (U, *["LogoutSuccess"] * 5),  # type: ignore[arg-type]
        own_session="account",
    ),
    "Mutation.deleteAccount": Row(  # with a wrong password: the personas stay (the right one: test_account_deletion)
        'mutation { deleteAccount(input: {password: "not the password"}) { __typename } }',
        (U, *["InvalidCredentials"] * 5),  # type: ignore[arg-type]
    ),
    # ---------------------------------------------------------------- API keys (the owner's)
    "Query.apiKeys": Row(
        "query($u: ID) { apiKeys(userId: $u) { id } }",
        (U, F, F, F, "hidden", "hidden"),
        of(u=lambda s, p: s.world.user_ids["owner"]),
    ),
    "Mutation.createApiKey": Row(
        'mutation($u: ID) { createApiKey(input: {name: "matrix", scopes: ["read"], userId: $u}) { __typename } }',
        (U, "Forbidden", "Forbidden", "Forbidden", "CreateApiKeySuccess", "CreateApiKeySuccess"),
        of(u=lambda s, p: s.world.user_ids["owner"]),
    ),
    "Mutation.revokeApiKey": Row(
        "mutation($k: ID!) { revokeApiKey(id: $k) { __typename } }",
        (U, "NotFound", "NotFound", "NotFound", "RevokeApiKeySuccess", "RevokeApiKeySuccess"),
        of(k=owners_api_key),
    ),
    # ---------------------------------------------------------------- webhooks (the owner's, never shared)
    "Query.webhookEndpoints": Row(
        "query { webhookEndpoints { id } }",
        (U, "hidden", "hidden", "hidden", "sees", "hidden"),
        of(x=owners_endpoint),
    ),
    "Query.webhookEndpoint": Row(
        "query($id: ID!) { webhookEndpoint(id: $id) { __typename } }",
        (U, "null", "null", "null", "WebhookEndpoint", "null"),
        of(id=owners_endpoint),
    ),
    "Query.webhookDeliveries": Row(
        # filtered by its generation: the owner's endpoint also collects the other cells' messages
        "query($g: ID) { webhookDeliveries(first: 100, filter: {generationId: $g}) { edges { node { id } } } }",
        (U, "hidden", "hidden", "hidden", "sees", "hidden"),
        of(x=owners_delivery, g=lambda s, p: s.delivery_generation_id),
    ),
    "Mutation.createWebhookEndpoint": Row(
        'mutation { createWebhookEndpoint(input: {url: "http://127.0.0.1:9/mine", events: [GENERATION_COMPLETED]}) '
        "{ __typename } }",
        (U, *["CreateWebhookEndpointSuccess"] * 5),  # type: ignore[arg-type]
    ),
    "Mutation.updateWebhookEndpoint": Row(
        'mutation($id: ID!) { updateWebhookEndpoint(id: $id, input: {description: "changed"}) { __typename } }',
        (U, "NotFound", "NotFound", "NotFound", "UpdateWebhookEndpointSuccess", "NotFound"),
        of(id=owners_endpoint),
    ),
    "Mutation.rotateWebhookSecret": Row(
        "mutation($id: ID!) { rotateWebhookSecret(id: $id) { __typename } }",
        (U, "NotFound", "NotFound", "NotFound", "RotateWebhookSecretSuccess", "NotFound"),
        of(id=owners_endpoint),
    ),
    "Mutation.deleteWebhookEndpoint": Row(
        "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) { __typename } }",
        (U, "NotFound", "NotFound", "NotFound", "DeleteWebhookEndpointSuccess", "NotFound"),
        of(id=owners_endpoint),
        mutates=True,
    ),
    "Mutation.redeliverWebhook": Row(
        "mutation($id: ID!) { redeliverWebhook(deliveryId: $id) { __typename } }",
        (U, "NotFound", "NotFound", "NotFound", "RedeliverWebhookSuccess", "NotFound"),
        of(id=owners_delivery),
    ),
    "Mutation.rotateWebhookSigningSecret": Row(  # the caller's own account secret
        "mutation { rotateWebhookSigningSecret { __typename } }",
        (U, *["WebhookSecretRotation"] * 5),  # type: ignore[arg-type]
    ),
    # ---------------------------------------------------------------- administration
    "Mutation.grantCredits": Row(
        'mutation($u: ID!) { grantCredits(input: {userId: $u, amount: 5, reason: "matrix"}) { __typename } }',
        (U, "Forbidden", "Forbidden", "Forbidden", "Forbidden", "GrantCreditsSuccess"),
        of(u=lambda s, p: s.world.user_ids["other"]),
    ),
    "Mutation.upsertModel": Row(
        'mutation($s: String!) { upsertModel(input: {slug: $s, name: "M", provider: "simulated", kind: IMAGE, '
        "costCredits: 1}) { __typename } }",
        (U, "Forbidden", "Forbidden", "Forbidden", "Forbidden", "ModelSuccess"),
        of(s=lambda s, p: f"matrix-{uuid.uuid4().hex[:8]}"),
    ),
    "Mutation.upsertPreset": Row(
        "mutation($m: ID!, $n: String!) { upsertPreset(input: {modelId: $m, name: $n, params: {}}) { __typename } }",
        (U, "Forbidden", "Forbidden", "Forbidden", "Forbidden", "PresetSuccess"),
        of(m=MODEL, n=FRESH),
    ),
    "Mutation.suspendUser": Row(  # a bystander of its own per cell: the personas stay signed in
        'mutation($u: ID!) { suspendUser(id: $u, reason: "matrix") { __typename } }',
        (U, "Forbidden", "Forbidden", "Forbidden", "Forbidden", "UserSuspensionSuccess"),
        of(u=lambda s, p: bystander(s)),
    ),
    "Mutation.reinstateUser": Row(
        "mutation($u: ID!) { reinstateUser(id: $u) { __typename } }",
        (U, "Forbidden", "Forbidden", "Forbidden", "Forbidden", "UserSuspensionSuccess"),
        of(u=lambda s, p: bystander(s)),
    ),
    "Mutation.setAdminSetting": Row(
        'mutation { setAdminSetting(key: "matrix.flag", value: {on: true}) { __typename } }',
        (U, "Forbidden", "Forbidden", "Forbidden", "Forbidden", "AdminSettingSuccess"),
    ),
}


# Subscriptions, over the real WebSocket (graphql-transport-ws) of the same app: anonymous
# clients are refused at `connection_init` (close 4401) before any field is chosen; signed-in
# personas get `next` (the current state, or the event their own action caused) or an error.
@dataclass(frozen=True)
class SubscriptionRow:
    document: str
    expect: tuple[str, str, str, str, str, str]  # anonymous, other, viewer, editor, owner, admin
    variables: Variables | None = None
    trigger: str = ""  # what makes an event for the persona: "generate" or "grant"


SUBSCRIPTION_ROWS: dict[str, SubscriptionRow] = {
    #                                                anonymous  other        viewer  editor  owner   admin
    "Subscription.generationUpdated": SubscriptionRow(
        "subscription($id: ID!) { generationUpdated(id: $id) { generation { id status } } }",
        ("4401", "NOT_FOUND", "next", "next", "next", "next"),
        of(id=GENERATION),
    ),
    "Subscription.myGenerationEvents": SubscriptionRow(
        "subscription { myGenerationEvents { generation { id } } }",
        ("4401", "next", "next", "next", "next", "next"),
        trigger="generate",
    ),
    "Subscription.creditsChanged": SubscriptionRow(
        "subscription { creditsChanged { balance } }",
        ("4401", "next", "next", "next", "next", "next"),
        trigger="grant",
    ),
}


def root_fields() -> list[str]:
    schema = build_schema().graphql_schema
    out = []
    for kind, root in (
        ("Query", schema.query_type),
        ("Mutation", schema.mutation_type),
        ("Subscription", schema.subscription_type),
    ):
        if root is not None:
            out += [f"{kind}.{name}" for name in root.fields]
    return out


def test_every_root_field_has_a_row() -> None:
    missing = sorted(set(root_fields()) - set(ROWS) - set(SUBSCRIPTION_ROWS))
    stale = sorted(set(ROWS) - set(root_fields()))
    if SUBSCRIPTION_ROWS.keys() & set(root_fields()):
        stale += sorted(set(SUBSCRIPTION_ROWS) - set(root_fields()))
    assert not missing, f"add these fields to the authorization matrix: {missing}"
    assert not stale, f"these matrix rows name fields that no longer exist: {stale}"


# ---------------------------------------------------------------- running one cell

UPLOAD_HEADERS = {"GraphQL-Require-Preflight": "1"}


async def execute(world: World, persona: str, row: Row, variables: dict[str, Any]) -> dict[str, Any]:
    if row.own_session and world.tokens[persona]:
        token = await (
            sign_in(world.client, world.emails[persona]) if row.own_session == "session" else stand_in(world, persona)
        )
        return await world.client.execute(row.document, variables, token=token, expect_errors=True)
    if not row.upload:
        return await world.run(persona, row.document, variables)
    token = world.tokens[persona]
    headers = {**UPLOAD_HEADERS, **({"Authorization": f"Bearer {token}"} if token else {})}
    response = await world.client.http.post(
        "/graphql",
        headers=headers,
        data={
            "operations": json.dumps({"query": row.document, "variables": {"file": None}}),
            "map": json.dumps({"0": ["variables.file"]}),
        },
        files={"0": ("matrix.png", b"\x89PNG\r\n\x1a\n0000", "image/png")},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def stand_in(world: World, persona: str) -> str:
    """A signed-in account of its own with the persona's role."""
    email = f"stand-in-{persona}-{uuid.uuid4().hex[:8]}@example.com"
    c = world.client.container
    if persona == "admin":
        await ensure_admin(email=email, password=PASSWORD, uow=c.uow(), hasher=c.hasher, clock=c.clock)
    else:
        await register_user(world.client, email, PASSWORD)
    return await sign_in(world.client, email)


def outcome(body: dict[str, Any], subject: Subject) -> str:
    if body.get("errors"):
        return str(body["errors"][0].get("extensions", {}).get("code"))
    (value,) = body["data"].values()
    if value is None:
        return "null"
    if isinstance(value, dict) and "edges" in value:
        return "sees" if {e["node"]["id"] for e in value["edges"]} & subject.ids else "hidden"
    if isinstance(value, list):
        value = [item for item in value if item is not None]  # `nodes`: null for what the viewer may not see
        if value and "id" not in value[0]:
            return "list"
        return "sees" if {item["id"] for item in value} & subject.ids else "hidden"
    return str(value["__typename"])


_shared: dict[str, Subject] = {}


async def subject_for(world: World, row: Row) -> Subject:
    """Rows that leave the subject as it was share one per chunk kind (the matrix stays fast)."""
    if row.mutates:
        return await prepare(world, row)
    if row.chunk not in _shared:
        _shared[row.chunk] = await prepare(world, row)
    return _shared[row.chunk]


async def prepare(world: World, row: Row) -> Subject:
    subject = Subject(await with_board(world, name="Subject"))
    subject.ids = {subject.world.board_id, subject.world.generation_id, world.model_id, world.preset_id}
    if row.chunk == "ready":
        body = await execute(world, "owner", replace(row, upload=True, document=UPLOAD_ONE), {})
        subject.chunk_id = body["data"]["uploadChunk"]["chunk"]["id"]
    elif row.chunk == "pending":
        body = await world.data("owner", REQUEST_ONE)
        subject.chunk_id = body["requestChunkUpload"]["chunk"]["id"]
    subject.ids.add(subject.chunk_id)
    return subject


UPLOAD_ONE = "mutation($file: Upload!) { uploadChunk(file: $file) { ... on UploadChunkSuccess { chunk { id } } } }"
REQUEST_ONE = (
    'mutation { requestChunkUpload(input: {filename: "b.png", contentType: "image/png", size: 5}) '
    "{ ... on ChunkUploadTicket { chunk { id } } } }"
)


@pytest.fixture(scope="module")
async def world(postgres_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    overrides = {
        "simulated_mode": "hang",
        "rate_limit_generate": 10_000,
        "rate_limit_upload": 10_000,
        "data_export_allowance": 10_000,
        "rate_limit_webhooks": 10_000,
        "rate_limit_webhook_redeliver": 10_000,
        "webhook_max_endpoints": 100,
        "webhook_allowed_networks": ["127.0.0.0/8"],
    }
    async with module_world(postgres_dsn, tmp_path_factory.mktemp("matrix"), **overrides) as w:
        preset = await w.data(
            "admin",
            'mutation($m: ID!) { upsertPreset(input: {modelId: $m, name: "base", params: {}}) '
            "{ ... on PresetSuccess { preset { id } } } }",
            {"m": w.model_id},
        )
        w.preset_id = preset["upsertPreset"]["preset"]["id"]
        _shared.clear()
        yield w
        _shared.clear()


@contextlib.contextmanager
def read_path(world: World, path: str) -> Iterator[None]:
    """`compiled`: the app as it runs (compiled reads on PostgreSQL); `resolvers`: every read on the resolvers."""
    app = world.client.app
    services = app.state.services
    if path == "resolvers":
        app.state.services = replace(services, json_reads=None)
    try:
        yield
    finally:
        app.state.services = services


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize(
    ("field_name", "path"),
    [
        (name, path)
        for name in sorted(ROWS)
        for path in (("compiled", "resolvers") if name.startswith("Query.") else ("compiled",))
    ],
)
async def test_matrix(world: World, field_name: str, path: str, persona: str) -> None:
    row = ROWS[field_name]
    # given the subject (board, generation, chunk); fresh for rows that change it
    subject = await subject_for(world, row)
    # when the persona calls the field, on the read path of this run
    variables = await (row.variables or no_variables)(subject, persona)
    with read_path(subject.world, path):
        body = await execute(subject.world, persona, row, variables)
    # then the outcome is the table's, and never an unexpected server error
    expected = row.expect[PERSONAS.index(persona)]
    assert outcome(body, subject) == expected, body
    assert "INTERNAL_SERVER_ERROR" not in json.dumps(body)


# ---------------------------------------------------------------- nested fields with their own authorization


# Fields below a root whose answer depends on who asks (compiled into the statement on PostgreSQL):
# the value at `path` per persona, on both read paths. "null": it (or its parent) is null;
# a list (edges for a connection): "some" or "none".
@dataclass(frozen=True)
class NestedRow:
    document: str
    path: tuple[str, ...]
    expect: tuple[str, str, str, str, str, str]  # anonymous, other, viewer, editor, owner, admin
    variables: Variables


NESTED_ROWS: dict[str, NestedRow] = {
    #                                                                           anonymous other  viewer editor owner admin
    "Generation.board": NestedRow(
        "query($id: ID!) { generation(id: $id) { board { id } } }",
        ("generation", "board"),
        (U, "null", "object", "object", "object", "null"),
        of(id=GENERATION),
    ),
    "Board.members": NestedRow(
        "query($id: ID!) { board(id: $id) { members { role user { id } } } }",
        ("board", "members"),
        (U, "null", "some", "some", "some", "null"),
        of(id=BOARD),
    ),
    "Board.invitations": NestedRow(
        "query($id: ID!) { board(id: $id) { invitations { email role } } }",
        ("board", "invitations"),
        (U, "null", "none", "none", "some", "null"),
        of(id=invited_board),
    ),
    "Board.generations": NestedRow(
        "query($id: ID!) { board(id: $id) { generations(first: 5) { edges { node { id } } } } }",
        ("board", "generations", "edges"),
        (U, "null", "some", "some", "some", "null"),
        of(id=BOARD),
    ),
}


def nested_outcome(body: dict[str, Any], path: tuple[str, ...]) -> str:
    if body.get("errors"):
        return str(body["errors"][0].get("extensions", {}).get("code"))
    value: Any = body["data"]
    for key in path:
        if value is None:
            return "null"
        value = value[key]
    if value is None:
        return "null"
    if isinstance(value, list):
        return "some" if value else "none"
    return "object"


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("path", ["compiled", "resolvers"])
@pytest.mark.parametrize("field_name", sorted(NESTED_ROWS))
async def test_nested_matrix(world: World, field_name: str, path: str, persona: str) -> None:
    row = NESTED_ROWS[field_name]
    # given the subject board (owner, editor, viewer; one generation) shared with the root rows
    subject = await subject_for(world, Row("", ("",) * 6))  # type: ignore[arg-type]
    # when the persona reads the field through a root it may call, on the read path of this run
    variables = await row.variables(subject, persona)
    with read_path(subject.world, path):
        body = await subject.world.run(persona, row.document, variables)
    # then the outcome is the table's
    assert nested_outcome(body, row.path) == row.expect[PERSONAS.index(persona)], body


# ---------------------------------------------------------------- subscriptions over the WebSocket

TRIGGERS = {
    "generate": 'mutation($m: ID!) { generate(input: {modelId: $m, prompt: "ping"}) { __typename } }',
    "grant": 'mutation($u: ID!) { grantCredits(input: {userId: $u, amount: 1, reason: "ping"}) { __typename } }',
}


async def trigger(subject: Subject, persona: str, kind: str) -> None:
    world = subject.world
    if kind == "generate":
        await world.data(persona, TRIGGERS[kind], {"m": world.model_id})
    elif kind == "grant":
        await world.data("admin", TRIGGERS[kind], {"u": world.user_ids[persona]})


async def subscription_outcome(subject: Subject, persona: str, row: SubscriptionRow) -> str:
    world = subject.world
    token = world.tokens[persona]
    try:
        async with AsgiWebSocket(world.client.app) as ws:
            await ws.send_json(
                {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"} if token else {}}
            )
            ack = await ws.receive_json()
            assert ack["type"] == "connection_ack", ack
            variables = await (row.variables or no_variables)(subject, persona)
            await ws.send_json(
                {"id": "1", "type": "subscribe", "payload": {"query": row.document, "variables": variables}}
            )
            for _ in range(20):  # the subscription starts listening a moment after `subscribe`
                if row.trigger:
                    await trigger(subject, persona, row.trigger)
                try:
                    message = await ws.receive_json(timeout=0.25)
                except TimeoutError:
                    continue
                if message["type"] == "next" and message["payload"].get("errors"):
                    return str(message["payload"]["errors"][0].get("extensions", {}).get("code"))
                if message["type"] == "next":
                    return "next"
                if message["type"] == "error":
                    return str(message["payload"][0].get("extensions", {}).get("code"))
                raise AssertionError(message)
            return "silent"
    except WebSocketClosed as closed:
        return str(closed.code)


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("field_name", sorted(SUBSCRIPTION_ROWS))
async def test_subscription_matrix(world: World, field_name: str, persona: str) -> None:
    if field_name not in root_fields():
        pytest.skip(f"{field_name} is not in the schema")
    row = SUBSCRIPTION_ROWS[field_name]
    subject = await subject_for(world, Row("", ("",) * 6))  # type: ignore[arg-type]
    assert await subscription_outcome(subject, persona, row) == row.expect[PERSONAS.index(persona)]


# ---------------------------------------------------------------- an administrator's API keys


async def admins_key(world: World, scopes: list[str]) -> str:
    body = await world.data(
        "admin",
        'mutation($s: [String!]!) { createApiKey(input: {name: "matrix-admin", scopes: $s}) '
        "{ __typename ... on CreateApiKeySuccess { key } ... on Error { message } } }",
        {"s": scopes},
    )
    key: str = body["createApiKey"]["key"]
    return key


@pytest.mark.parametrize("path", ["compiled", "resolvers"])
async def test_an_administrators_key_acts_as_administrator_only_with_an_admin_scope(world: World, path: str) -> None:
    # given an administrator's keys: without an admin scope, with admin:read, with admin:write
    subject = await subject_for(world, Row("", ("",) * 6))  # type: ignore[arg-type]
    plain = await admins_key(world, ["read", "generate"])
    reader = await admins_key(world, ["read", "generate", "admin:read"])
    writer = await admins_key(world, ["read", "generate", "admin:read", "admin:write"])
    generation = "query($id: ID!) { generation(id: $id) { __typename } }"
    providers = "query($id: ID!) { generation(id: $id) { providerAttempts { __typename } } }"
    inactive = "query { models(includeInactive: true) { id } }"
    with read_path(world, path):
        # when the key without an admin scope reads another user's things, it is a plain user
        assert (await world.client.execute(generation, {"id": subject.world.generation_id}, token=plain))["data"] == {
            "generation": None
        }
        refused = await world.client.execute(inactive, token=plain, expect_errors=True)
        assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN", refused
        # while admin:read opens them
        body = await world.client.execute(generation, {"id": subject.world.generation_id}, token=reader)
        assert body["data"]["generation"]["__typename"] == "Generation", body
        assert "errors" not in await world.client.execute(providers, {"id": subject.world.generation_id}, token=reader)
        assert "errors" not in await world.client.execute(inactive, token=reader)
    # watching another user's generation: the same rule
    row = SUBSCRIPTION_ROWS["Subscription.generationUpdated"]
    for token, expected in ((plain, "NOT_FOUND"), (reader, "next")):
        world.tokens["keyed"] = token
        assert await subscription_outcome(subject, "keyed", row) == expected
    # cancelling another user's generation: not without an admin scope (it is not even seen),
    # not with admin:read only, and with admin:write
    fresh = await prepare(world, Row("", ("",) * 6, mutates=True))  # type: ignore[arg-type]
    cancel = "mutation($id: ID!) { cancelGeneration(id: $id) { __typename } }"
    for token, expected in ((plain, "NotFound"), (reader, "Forbidden"), (writer, "CancelSuccess")):
        body = await world.client.execute(cancel, {"id": fresh.world.generation_id}, token=token)
        assert body["data"]["cancelGeneration"]["__typename"] == expected, body
