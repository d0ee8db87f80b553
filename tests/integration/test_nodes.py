"""`node(id:)` and `nodes(ids:)`: every type with a global id, authorized as its direct query.

A world of six personas (board_world.py) holding one object of every Node type, some of them
in a shared board; each persona asks for each id. What a persona may not read answers exactly
what an id that names nothing answers (`{"node": null}`, no error), and hypothesis sends
generated ids (UUIDs of every spelling, near-UUIDs, any text) that name nothing the persona
may read. The direct queries give the same verdicts.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from graphql import GraphQLInterfaceType, GraphQLObjectType
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from domain.chunks import Chunk, ChunkStatus, chunk_key
from domain.repositories import Asset
from domain.text import text_problem
from domain.users import Principal, Role
from domain.webhooks import WebhookEvent
from graph.nodes import MAX_NODES
from graph.schema import build_schema
from tests.fixtures.app import operator_model
from tests.integration.board_world import GENERATE, World, module_world, with_board

pytestmark = pytest.mark.postgres

PERSONAS = ["anonymous", "other", "viewer", "editor", "owner", "admin"]
MEMBERS = {"viewer", "editor", "owner"}
SIGNED_IN = set(PERSONAS) - {"anonymous"}
NODE = "query Node($id: ID!) { node(id: $id) { __typename id } }"
NODES = "query Nodes($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }"
CHECKS = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
UPSERT_PRESET = """mutation P($m: ID!) { upsertPreset(input: {modelId: $m, name: "Square", params: {}}) {
  __typename ... on PresetSuccess { preset { id } } } }"""
CREATE_KEY = """mutation { createApiKey(input: {name: "ci", scopes: ["read"]}) {
  __typename ... on CreateApiKeySuccess { key apiKey { id } } } }"""
REQUEST_EXPORT = "mutation { requestDataExport { __typename ... on RequestDataExportSuccess { export { id } } } }"


class Objects:
    """One object of each Node type, with who may read it."""

    def __init__(self) -> None:
        self.by_id: dict[str, tuple[str, set[str]]] = {}  # id -> (type, personas who may read it)

    def add(self, type_name: str, ident: str, readers: set[str]) -> None:
        self.by_id[ident] = (type_name, readers)


@pytest.fixture(scope="module")
async def world(postgres_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[World, Objects]]:
    tmp = tmp_path_factory.mktemp("nodes")
    async with module_world(postgres_dsn, tmp, simulated_mode="hang", webhook_allowed_networks="127.0.0.1/32") as base:
        w = await with_board(base)
        objects = Objects()
        owner = uuid.UUID(w.user_ids["owner"])
        # generations: one in the shared board, one of the owner's own
        objects.add("Generation", w.generation_id, MEMBERS | {"admin"})
        private = (await w.data("owner", GENERATE, {"modelId": w.model_id, "boardId": None}))["generate"]
        objects.add("Generation", private["generation"]["id"], {"owner", "admin"})
        objects.add("Board", w.board_id, MEMBERS)  # no admin exception for boards, as `board(id:)`
        objects.add("AiModel", w.model_id, set(PERSONAS))
        inactive = await operator_model(w.client, active=False)
        objects.add("AiModel", inactive, {"admin"})
        preset = (await w.data("admin", UPSERT_PRESET, {"m": w.model_id}))["upsertPreset"]
        objects.add("Preset", preset["preset"]["id"], set(PERSONAS))
        for persona in ("owner", "other"):
            objects.add("User", w.user_ids[persona], {persona})  # as `me`: one's own account only
        export = (await w.data("owner", REQUEST_EXPORT))["requestDataExport"]
        objects.add("DataExport", export["export"]["id"], {"owner"})
        key = (await w.data("owner", CREATE_KEY))["createApiKey"]
        objects.add("ApiKey", key["apiKey"]["id"], {"owner", "admin"})  # as `apiKeys(userId:)`
        w.tokens["key"] = key["key"]  # an API key with the read scope, as a caller
        principal = Principal(owner, Role.USER)
        events = [e.value for e in WebhookEvent]
        webhooks = w.client.app.state.services.webhooks
        hook, _ = await webhooks.create_endpoint(
            principal, url="http://127.0.0.1:9/hook", events=events, description=""
        )
        objects.add("WebhookEndpoint", str(hook.id), {"owner"})  # as `webhookEndpoint(id:)`
        at = datetime.now(UTC)
        chunk = Chunk(uuid.uuid4(), owner, chunk_key(owner, uuid.uuid4(), "in.png"), "in.png", "image/png", 1,
                      ChunkStatus.READY, at)  # fmt: skip
        asset = Asset(uuid.uuid4(), uuid.UUID(w.generation_id), "output", 0, f"outputs/{uuid.uuid4()}.png",
                      "image/png", 10, at)  # fmt: skip
        uow = w.client.container.uow()
        async with uow:
            await uow.chunks.add(chunk)
            assert await uow.generations.add_asset(asset)
            await uow.commit()
        objects.add("Chunk", str(chunk.id), {"owner"})
        objects.add("Asset", str(asset.id), MEMBERS | {"admin"})  # as its generation
        yield w, objects


def test_every_type_with_a_global_id_is_a_node_and_the_world_holds_each() -> None:
    schema = build_schema().graphql_schema
    node = schema.type_map["Node"]
    assert isinstance(node, GraphQLInterfaceType)
    implementing = {t.name for t in schema.get_possible_types(node)}
    with_id = {
        t.name
        for t in schema.type_map.values()
        if isinstance(t, GraphQLObjectType) and "id" in t.fields and str(t.fields["id"].type) == "ID!"
    }
    # the admin views of an account carry the account's id (a User's): `node` answers it as a User;
    # ledger and audit entries and webhook deliveries are reached through their lists only; the Delete*
    # results name a deleted object; the rest are Nodes
    assert with_id - implementing <= {
        "AdminUser",
        "AdminUserDetails",
        "LedgerEntry",
        "AuditEntry",
        "DeleteChunkSuccess",
        "DeleteWebhookEndpointSuccess",
        "WebhookDelivery",
    }
    assert implementing == {
        "Generation", "Board", "AiModel", "Preset", "User", "DataExport", "Chunk", "Asset", "ApiKey",
        "WebhookEndpoint",
    }  # fmt: skip


@pytest.mark.parametrize("persona", PERSONAS)
async def test_node_answers_each_object_only_to_those_its_direct_query_answers(
    world: tuple[World, Objects], persona: str
) -> None:
    w, objects = world
    nothing = await w.run(persona, NODE, {"id": str(uuid.uuid4())})
    assert nothing == {"data": {"node": None}}
    for ident, (type_name, readers) in objects.by_id.items():
        body = await w.run(persona, NODE, {"id": ident})
        if persona in readers:
            assert body == {"data": {"node": {"__typename": type_name, "id": ident}}}, (persona, type_name)
        else:
            # then another's object is exactly a missing one
            assert body == nothing, (persona, type_name, body)
    # and `nodes` gives the same answers, in order, in one request
    ids = list(objects.by_id)
    body = await w.run(persona, NODES, {"ids": ids})
    expected = [{"__typename": objects.by_id[i][0], "id": i} if persona in objects.by_id[i][1] else None for i in ids]
    assert body == {"data": {"nodes": expected}}


DIRECT = {
    "Generation": "query D($id: ID!) { x: generation(id: $id) { id } }",
    "Board": "query D($id: ID!) { x: board(id: $id) { id } }",
    "Chunk": "query D($id: ID!) { x: chunk(id: $id) { id } }",
    "DataExport": "query D($id: ID!) { x: dataExport(id: $id) { __typename ... on DataExport { id } } }",
}


@pytest.mark.parametrize("persona", sorted(SIGNED_IN))
async def test_node_and_the_direct_queries_agree(world: tuple[World, Objects], persona: str) -> None:
    w, objects = world
    for ident, (type_name, _) in objects.by_id.items():
        if type_name not in DIRECT:
            continue
        direct = (await w.data(persona, DIRECT[type_name], {"id": ident}))["x"]
        found = direct is not None and direct.get("id") == ident
        node = (await w.data(persona, NODE, {"id": ident}))["node"]
        assert (node is not None) == found, (persona, type_name, direct, node)


def spellings(ident: uuid.UUID) -> st.SearchStrategy[str]:
    text = str(ident)
    return st.sampled_from(
        [text, text.upper(), ident.hex, "{" + text + "}", f"urn:uuid:{text}", f" {text}", text[:-1], text + "0"]
    )


generated_ids = (
    st.uuids().flatmap(spellings)
    | st.text(max_size=80)
    | st.integers().map(str)
    | st.sampled_from(["", " ", "null", "0", "-1", "a" * 10_000])
).filter(lambda ident: text_problem(ident) is None)  # unstorable text is refused by every field alike (below)


@CHECKS
@given(ident=generated_ids, persona=st.sampled_from(PERSONAS))
@example(ident=str(uuid.UUID(int=0)), persona="admin")
async def test_generated_ids_name_nothing_and_answer_null_without_an_error(
    world: tuple[World, Objects], ident: str, persona: str
) -> None:
    w, _ = world
    body = await w.run(persona, NODE, {"id": ident})
    assert body == {"data": {"node": None}}, (ident, body)


@CHECKS
@given(data=st.data(), persona=st.sampled_from(PERSONAS))
async def test_real_ids_in_any_spelling_answer_as_the_canonical_id(
    world: tuple[World, Objects], data: st.DataObject, persona: str
) -> None:
    # given a real object's id, spelled any way a UUID may be (or nearly)
    w, objects = world
    canonical = data.draw(st.sampled_from(sorted(objects.by_id)), label="object")
    spelled = data.draw(spellings(uuid.UUID(canonical)), label="spelling")
    type_name, readers = objects.by_id[canonical]
    # when a persona asks for it
    body = await w.run(persona, NODE, {"id": spelled})
    # then it is the object (under its canonical id) for those who may read it and null for the rest
    try:
        same = uuid.UUID(spelled) == uuid.UUID(canonical)
    except ValueError:
        same = False
    visible = same and persona in readers
    expected: dict[str, Any] | None = {"__typename": type_name, "id": canonical} if visible else None
    assert body == {"data": {"node": expected}}, (spelled, persona)


@pytest.mark.parametrize("ident", ["\x00", "\x00" + str(uuid.UUID(int=0))])
async def test_an_id_no_field_may_take_is_invalid_input_for_everyone_alike(
    world: tuple[World, Objects], ident: str
) -> None:
    # given text no argument of genhub takes (graph/boundary.py: NUL), which names nothing
    w, _ = world
    answers = [await w.run(persona, NODE, {"id": ident}) for persona in PERSONAS]
    # then every persona gets the same INVALID_INPUT naming `id`, as from the direct queries
    assert answers[0]["data"] == {"node": None}
    assert [e["extensions"]["code"] for e in answers[0]["errors"]] == ["INVALID_INPUT"]
    strip = [{**a, "errors": [{k: v for k, v in e.items() if k != "extensions"} for e in a["errors"]]} for a in answers]
    assert all(a == strip[0] for a in strip), answers


async def test_api_keys_may_not_call_node_whatever_their_scopes(world: tuple[World, Objects]) -> None:
    # a key's scopes name root fields; `node` reaches data exports and keys, which no scope opens
    w, objects = world
    for document, variables in ((NODE, {"id": w.generation_id}), (NODES, {"ids": list(objects.by_id)})):
        body = await w.run("key", document, variables)
        assert body["data"] in (None, {"node": None}), body
        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"], body


async def test_nodes_takes_at_most_its_cap_of_ids(world: tuple[World, Objects]) -> None:
    w, objects = world
    ids = [str(uuid.uuid4()) for _ in range(MAX_NODES)]
    body = await w.run("owner", NODES, {"ids": ids})
    assert body == {"data": {"nodes": [None] * MAX_NODES}}
    body = await w.run("owner", NODES, {"ids": [*ids, next(iter(objects.by_id))]})
    assert body["data"] is None
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "INVALID_INPUT" and "ids" in error["message"], error
    assert (await w.run("owner", NODES, {"ids": []})) == {"data": {"nodes": []}}


async def test_a_node_is_read_with_the_fields_of_its_type(world: tuple[World, Objects]) -> None:
    # given the board generation, read through `node` with a fragment of its type
    w, _ = world
    document = (
        "query N($id: ID!) { node(id: $id) { id ... on Generation { status board { id myRole } "
        "outputs { id kind } } } }"
    )
    node = (await w.data("viewer", document, {"id": w.generation_id}))["node"]
    direct = (
        await w.data(
            "viewer",
            "query G($id: ID!) { generation(id: $id) { id status board { id myRole } outputs { id kind } } }",
            {"id": w.generation_id},
        )
    )["generation"]
    # then it is what the direct query answers
    assert node == direct
