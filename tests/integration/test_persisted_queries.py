"""Automatic persisted queries (Apollo's protocol) and trusted documents over HTTP and WebSocket, in process.

The real app with its lifespan: the in-process store (no REDIS_URL) unless a test says
otherwise, and the Redis store on the tests' Redis. The curl and Apollo Client runs
against a server process are in tests/e2e/test_persisted_queries_server.py.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.persisted_documents import document_hash
from tests.fixtures.app import GraphQLClient, SettingsFactory, running_app
from tests.integration.asgi_websocket import AsgiWebSocket, WebSocketClosed

MODELS = "query Models { models { slug } }"
MODELS_HASH = document_hash(MODELS)
INVALID = "query Nope { nope }"
LOGOUT = "mutation Out { logout { __typename } }"
ME = "query Me { me { id } }"
NOT_FOUND_BODY = {
    "errors": [{"message": "PersistedQueryNotFound", "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"}}]
}


def apq(digest: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


def without_request_id(body: Any) -> Any:
    for item in body if isinstance(body, list) else [body]:
        for error in item.get("errors", ()):
            error.get("extensions", {}).pop("requestId", None)
    return body


async def post(client: GraphQLClient, body: Any) -> tuple[int, Any]:
    response = await client.http.post("/graphql", json=body)
    return response.status_code, without_request_id(response.json())


async def get(client: GraphQLClient, **params: Any) -> tuple[int, Any]:
    query = {k: json.dumps(v) if isinstance(v, dict) else v for k, v in params.items()}
    response = await client.http.get("/graphql", params=query, headers={"accept": "application/json"})
    return response.status_code, without_request_id(response.json())


async def token(client: GraphQLClient) -> str:
    """A signed-in user's access token (through the use case: a trusted-only server refuses `register`)."""
    session = await client.services.accounts.register("apq@example.com", "correct horse battery")
    return str(session.access_token)


@pytest.fixture
async def client(make_settings: SettingsFactory) -> AsyncIterator[GraphQLClient]:
    async with running_app(make_settings(persisted_query_max_bytes=512, rate_limit_persisted_register=5)) as c:
        yield c


async def test_a_hash_misses_then_registers_then_hits_over_post_and_get(client: GraphQLClient) -> None:
    # given a document the server has never seen, sent by its hash alone
    assert await post(client, {"extensions": apq(MODELS_HASH)}) == (200, NOT_FOUND_BODY)
    assert await get(client, extensions=apq(MODELS_HASH)) == (200, NOT_FOUND_BODY)
    # when the client sends the text with its hash
    assert await post(client, {"query": MODELS, "extensions": apq(MODELS_HASH)}) == (200, {"data": {"models": []}})
    # then the hash alone runs it, over POST and GET, and as a `documentId`
    assert await post(client, {"extensions": apq(MODELS_HASH)}) == (200, {"data": {"models": []}})
    assert await get(client, extensions=apq(MODELS_HASH)) == (200, {"data": {"models": []}})
    assert await post(client, {"documentId": f"sha256:{MODELS_HASH}"}) == (200, {"data": {"models": []}})
    # and in a batch
    status, batch = await post(client, [{"extensions": apq(MODELS_HASH)}, {"extensions": apq(document_hash(ME))}])
    assert status == 200 and batch == [{"data": {"models": []}}, NOT_FOUND_BODY]


async def test_a_hash_that_is_not_the_texts_is_refused(client: GraphQLClient) -> None:
    status, body = await post(client, {"query": MODELS, "extensions": apq(document_hash(INVALID))})
    assert status == 400
    assert body["errors"][0]["message"] == "provided sha does not match query"
    assert await post(client, {"extensions": apq(document_hash(INVALID))}) == (200, NOT_FOUND_BODY)


async def test_invalid_oversized_and_mutations_over_get_are_never_stored(client: GraphQLClient) -> None:
    # an invalid document runs (its errors answer) and is not stored
    status, body = await post(client, {"query": INVALID, "extensions": apq(document_hash(INVALID))})
    assert status == 200 and "Cannot query field" in body["errors"][0]["message"]
    assert await post(client, {"extensions": apq(document_hash(INVALID))}) == (200, NOT_FOUND_BODY)
    # a document over PERSISTED_QUERY_MAX_BYTES runs and is not stored
    big = "query Big { models { slug } }" + " " * 600
    assert await post(client, {"query": big, "extensions": apq(document_hash(big))}) == (200, {"data": {"models": []}})
    assert await post(client, {"extensions": apq(document_hash(big))}) == (200, NOT_FOUND_BODY)
    # a mutation sent over GET with its text is refused and not stored
    response = await client.http.get(
        "/graphql", params={"query": LOGOUT, "extensions": json.dumps(apq(document_hash(LOGOUT)))}
    )
    assert response.status_code == 405
    assert await post(client, {"extensions": apq(document_hash(LOGOUT))}) == (200, NOT_FOUND_BODY)


async def test_a_mutation_stored_over_post_still_cannot_run_over_get(client: GraphQLClient) -> None:
    status, _ = await post(client, {"query": LOGOUT, "extensions": apq(document_hash(LOGOUT))})
    assert status == 200
    response = await client.http.get(
        "/graphql",
        params={"extensions": json.dumps(apq(document_hash(LOGOUT)))},
        headers={"accept": "application/json"},
    )
    assert response.status_code == 405 and response.headers["allow"] == "POST"


async def test_registrations_over_the_rate_run_but_are_not_stored(client: GraphQLClient) -> None:
    documents = [f"query Q{i} {{ models {{ slug }} }}" for i in range(7)]
    for document in documents:  # RATE_LIMIT_PERSISTED_REGISTER=5
        assert await post(client, {"query": document, "extensions": apq(document_hash(document))}) == (
            200,
            {"data": {"models": []}},
        )
    stored = [await post(client, {"extensions": apq(document_hash(d))}) != (200, NOT_FOUND_BODY) for d in documents]
    assert stored == [True] * 5 + [False] * 2


async def test_registrations_over_the_global_rate_run_but_are_not_stored(make_settings: SettingsFactory) -> None:
    # given a per-address rate well above the rate of every address together
    settings = make_settings(rate_limit_persisted_register=100, rate_limit_persisted_register_global=3)
    async with running_app(settings) as client:
        documents = [f"query G{i} {{ models {{ slug }} }}" for i in range(5)]
        for document in documents:
            assert await post(client, {"query": document, "extensions": apq(document_hash(document))}) == (
                200,
                {"data": {"models": []}},
            )
        # then the global rate decided: three stored, the others run but not stored
        stored = [await post(client, {"extensions": apq(document_hash(d))}) != (200, NOT_FOUND_BODY) for d in documents]
        assert stored == [True] * 3 + [False] * 2


async def test_disabled_persisted_queries_answer_not_supported(make_settings: SettingsFactory) -> None:
    async with running_app(make_settings(persisted_queries_enabled=False)) as client:
        for body in ({"extensions": apq(MODELS_HASH)}, {"query": MODELS, "extensions": apq(MODELS_HASH)}):
            status, answer = await post(client, body)
            assert status == 200 and answer["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_SUPPORTED"
            assert answer["errors"][0]["message"] == "PersistedQueryNotSupported"
        assert await post(client, {"query": MODELS}) == (200, {"data": {"models": []}})


async def test_the_redis_store_is_shared_by_replicas(make_settings: SettingsFactory, redis_url: str) -> None:
    document = "query Shared { models { slug } }"
    config = make_settings(redis_url=redis_url)
    async with running_app(config) as one, running_app(config) as two:
        assert await post(one, {"extensions": apq(document_hash(document))}) == (200, NOT_FOUND_BODY)
        await post(one, {"query": document, "extensions": apq(document_hash(document))})
        assert await post(two, {"extensions": apq(document_hash(document))}) == (200, {"data": {"models": []}})


async def test_over_the_websocket_a_hash_misses_registers_and_hits(client: GraphQLClient) -> None:
    async with AsgiWebSocket(client.app) as ws:
        await ws.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {await token(client)}"}})
        assert (await ws.receive_json())["type"] == "connection_ack"
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"extensions": apq(MODELS_HASH)}})
        assert await ws.receive_json() == {
            "id": "1",
            "type": "error",
            "payload": [{"message": "PersistedQueryNotFound", "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"}}],
        }
        await ws.send_json(
            {"id": "2", "type": "subscribe", "payload": {"query": MODELS, "extensions": apq(MODELS_HASH)}}
        )
        assert (await ws.receive_json())["payload"] == {"data": {"models": []}}
        assert (await ws.receive_json())["type"] == "complete"
        await ws.send_json({"id": "3", "type": "subscribe", "payload": {"extensions": apq(MODELS_HASH)}})
        assert await ws.receive_json() == {"id": "3", "type": "next", "payload": {"data": {"models": []}}}


async def test_a_hash_before_connection_init_closes_the_socket_unlooked_up(client: GraphQLClient) -> None:
    async with AsgiWebSocket(client.app) as ws:
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"extensions": apq(MODELS_HASH)}})
        with pytest.raises(WebSocketClosed) as closed:
            await ws.receive_json()
        assert closed.value.code == 4401


# ---------------------------------------------------------------- trusted documents


@pytest.fixture
async def trusted(make_settings: SettingsFactory, tmp_path: Path) -> AsyncIterator[GraphQLClient]:
    manifest = tmp_path / "persisted-documents.json"
    manifest.write_text(json.dumps({MODELS_HASH: MODELS}))
    async with running_app(
        make_settings(trusted_documents_manifest=manifest, trusted_documents_only=True, graphiql=True)
    ) as c:
        yield c


async def test_trusted_only_runs_manifest_documents_and_refuses_the_rest(trusted: GraphQLClient) -> None:
    models = (200, {"data": {"models": []}})
    assert await post(trusted, {"extensions": apq(MODELS_HASH)}) == models
    assert await post(trusted, {"documentId": f"sha256:{MODELS_HASH}"}) == models
    assert await get(trusted, documentId=MODELS_HASH) == models
    assert await post(trusted, {"query": MODELS}) == models  # the text of a trusted document
    for body in (
        {"query": ME},
        {"query": ME, "extensions": apq(document_hash(ME))},
        {"extensions": apq(document_hash(ME))},
    ):
        status, answer = await post(trusted, body)
        assert status == 400, body
        assert answer["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_TRUSTED"
        assert answer["errors"][0]["message"].startswith("Only trusted documents are accepted")
    # and nothing was registered by the attempt
    assert (await post(trusted, {"extensions": apq(document_hash(ME))}))[0] == 400
    # GraphiQL is not served: it sends ad-hoc documents
    page = await trusted.http.get("/graphql", headers={"accept": "text/html"})
    assert "graphiql" not in page.text.lower()


async def test_trusted_only_over_the_websocket(trusted: GraphQLClient) -> None:
    async with AsgiWebSocket(trusted.app) as ws:
        await ws.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {await token(trusted)}"}})
        assert (await ws.receive_json())["type"] == "connection_ack"
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": ME}})
        refused = await ws.receive_json()
        assert refused["type"] == "error"
        assert refused["payload"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_TRUSTED"
        await ws.send_json({"id": "2", "type": "subscribe", "payload": {"extensions": apq(MODELS_HASH)}})
        assert await ws.receive_json() == {"id": "2", "type": "next", "payload": {"data": {"models": []}}}


async def test_trusted_only_over_the_legacy_websocket_protocol(trusted: GraphQLClient) -> None:
    async with AsgiWebSocket(trusted.app, subprotocols=("graphql-ws",)) as ws:
        await ws.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {await token(trusted)}"}})
        assert (await ws.receive_json())["type"] == "connection_ack"
        await ws.send_json({"id": "1", "type": "start", "payload": {"query": ME}})
        while (refused := await ws.receive_json())["type"] == "ka":
            pass
        assert refused["type"] == "error" and refused["id"] == "1"
        assert refused["payload"]["extensions"]["code"] == "PERSISTED_QUERY_NOT_TRUSTED"
        await ws.send_json({"id": "2", "type": "start", "payload": {"extensions": apq(MODELS_HASH)}})
        while (answer := await ws.receive_json())["type"] == "ka":
            pass
        # the id resolved to the trusted text, which legacy graphql-ws then judges: it runs subscriptions only
        assert answer == {"id": "2", "type": "error", "payload": {"message": "queries are not allowed"}}


async def test_trusted_documents_this_schema_refuses_are_named_at_start(
    make_settings: SettingsFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    manifest = tmp_path / "stale.json"
    stale = "query Gone { removedField }"
    manifest.write_text(json.dumps({MODELS_HASH: MODELS, document_hash(stale): stale}))
    with caplog.at_level("INFO", logger="genhub.documents"):
        async with running_app(make_settings(trusted_documents_manifest=manifest)) as client:
            status, body = await post(client, {"documentId": document_hash(stale)})
    assert status == 200 and "removedField" in body["errors"][0]["message"]
    assert "2 loaded, 1 invalid" in caplog.text
    assert f"({document_hash(stale)}) is invalid" in caplog.text


async def test_a_bad_manifest_stops_the_start(make_settings: SettingsFactory, tmp_path: Path) -> None:
    manifest = tmp_path / "bad.json"
    manifest.write_text(json.dumps({MODELS_HASH: ME}))
    with pytest.raises(RuntimeError, match="TRUSTED_DOCUMENTS_MANIFEST cannot be used: .*does not match"):
        async with running_app(make_settings(trusted_documents_manifest=manifest)):
            pass


# ---------------------------------------------------------------- hostile input

HOSTILE = settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=70),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=3),
    max_leaves=8,
)
PERSISTED = st.fixed_dictionaries(
    {},
    optional={
        "version": st.one_of(st.just(1), JSONISH),
        "sha256Hash": st.one_of(st.just(MODELS_HASH), st.just(MODELS_HASH.upper()), st.text(max_size=70), JSONISH),
    },
)


@HOSTILE
@given(
    extensions=st.one_of(JSONISH, st.builds(lambda p: {"persistedQuery": p}, st.one_of(PERSISTED, JSONISH))),
    document_id=st.one_of(st.none(), st.just(f"sha256:{MODELS_HASH}"), JSONISH),
    query=st.one_of(st.none(), st.just(MODELS), st.just(""), JSONISH),
    via_get=st.booleans(),
)
async def test_hostile_extensions_never_fail_the_server(
    client: GraphQLClient, extensions: Any, document_id: Any, query: Any, via_get: bool
) -> None:
    body = {
        k: v for k, v in (("query", query), ("extensions", extensions), ("documentId", document_id)) if v is not None
    }
    if via_get:
        params = {k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}
        response = await client.http.get("/graphql", params=params, headers={"accept": "application/json"})
    else:
        response = await client.http.post("/graphql", json=body)
    assert response.status_code in {200, 400, 405}, response.text
    assert "INTERNAL_SERVER_ERROR" not in response.text and "Traceback" not in response.text
    json.loads(response.text)


@HOSTILE
@given(
    persisted=st.one_of(PERSISTED, JSONISH),
    document_id=st.one_of(st.none(), st.just(f"sha256:{MODELS_HASH}"), JSONISH),
    query=st.one_of(st.none(), st.just(MODELS)),
)
async def test_hostile_ids_over_the_websocket_answer_the_operation_and_keep_the_socket(
    client: GraphQLClient, persisted: Any, document_id: Any, query: Any
) -> None:
    if not hasattr(client, "ws_token"):
        client.ws_token = await token(client)  # type: ignore[attr-defined]
    payload = {"extensions": {"persistedQuery": persisted}, "documentId": document_id, "query": query}
    async with AsgiWebSocket(client.app) as ws:
        await ws.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {client.ws_token}"}})  # type: ignore[attr-defined]
        assert (await ws.receive_json())["type"] == "connection_ack"
        await ws.send_json(
            {"id": "h", "type": "subscribe", "payload": {k: v for k, v in payload.items() if v is not None}}
        )
        answer = await ws.receive_json()
        assert answer["id"] == "h" and answer["type"] in {"next", "error"}, answer
        if answer["type"] == "error":
            codes = {e.get("extensions", {}).get("code") for e in answer["payload"]}
            assert codes <= {None, "BAD_REQUEST", "PERSISTED_QUERY_NOT_FOUND"}, answer
        await ws.send_json({"type": "ping"})
        while (message := await ws.receive_json())["type"] != "pong":
            assert message["id"] == "h"  # the operation's own complete; the socket stays open
