"""@defer and @stream over every transport: one clear error, never a 500, a multipart body or a partial answer.

genhub does not deliver incrementally (docs/clients.md, "@defer and @stream"). A client that
asks anyway, with the Accept headers Apollo Client and urql send, gets the validation error
of graph/incremental_delivery.py before anything runs: the history page's compiled read
included, which would otherwise answer the deferred fields at once without saying so.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.fixtures.app import GraphQLClient, SettingsFactory, register_user, running_app
from tests.integration.asgi_websocket import AsgiWebSocket

GQL_RESPONSE = "application/graphql-response+json"
#: What Apollo Client 4 sends for a document with @defer (its Defer20220824Handler; GraphQL17Alpha9Handler).
APOLLO_2022 = f"multipart/mixed;deferSpec=20220824,{GQL_RESPONSE},application/json;q=0.9"
APOLLO_V02 = f"multipart/mixed;incrementalSpec=v0.2,{GQL_RESPONSE},application/json;q=0.9"
#: urql's fetch exchange.
URQL = "multipart/mixed, application/graphql-response+json, application/graphql+json, application/json"

HISTORY_DEFERRED = """
query History { generations(first: 10) { edges { node { id status ...Outputs @defer(label: "outputs") } } } }
fragment Outputs on Generation { outputs { id url } }
"""
HISTORY_STREAMED = "query History { generations(first: 10) { edges @stream(initialCount: 1) { node { id } } } }"
HISTORY = "query History { generations(first: 10) { edges { node { id } } } }"


@pytest.fixture
async def client(make_settings: SettingsFactory) -> AsyncIterator[GraphQLClient]:
    async with running_app(make_settings()) as c:
        user = await register_user(c, "defer@example.com")
        yield c.as_user(user["accessToken"])


async def post(client: GraphQLClient, body: object, accept: str) -> tuple[int, str, Any]:
    headers = {"Content-Type": "application/json", "Accept": accept, "Authorization": f"Bearer {client.token}"}
    r = await client.http.post("/graphql", content=json.dumps(body).encode(), headers=headers)
    return r.status_code, r.headers.get("content-type", ""), r.json()


def refused(body: Any, directive: str) -> None:
    assert isinstance(body, dict) and "data" not in body, body
    [error] = body["errors"]
    assert error["message"].startswith(f"@{directive} is not supported by this server"), error
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert error["extensions"]["unsupportedDirective"] == directive


@pytest.mark.parametrize("accept", [APOLLO_2022, APOLLO_V02, URQL])
@pytest.mark.parametrize(("query", "directive"), [(HISTORY_DEFERRED, "defer"), (HISTORY_STREAMED, "stream")])
async def test_apollo_and_urql_accept_headers_get_a_json_validation_error(
    client: GraphQLClient, accept: str, query: str, directive: str
) -> None:
    # given a signed-in client asking for the history page with incremental delivery
    # when it posts with the Accept header its library sends
    status, media, body = await post(client, {"query": query, "operationName": "History"}, accept)
    # then a plain graphql-response+json request error (400), never multipart/mixed
    assert status == 400 and media.startswith(GQL_RESPONSE)
    refused(body, directive)
    # and the same page without the directive is served as always
    status, _, body = await post(client, {"query": HISTORY}, accept)
    assert status == 200 and body == {"data": {"generations": {"edges": []}}}


async def test_application_json_and_get_and_a_batch_item(client: GraphQLClient) -> None:
    status, media, body = await post(client, {"query": HISTORY_DEFERRED}, "application/json")
    assert status == 200 and media.startswith("application/json")
    refused(body, "defer")
    r = await client.http.get(
        "/graphql",
        params={"query": HISTORY_STREAMED},
        headers={"Accept": "application/json", "Authorization": f"Bearer {client.token}"},
    )
    assert r.status_code == 200
    refused(r.json(), "stream")
    status, _, batch = await post(client, [{"query": HISTORY}, {"query": HISTORY_DEFERRED}], "application/json")
    assert status == 200 and batch[0] == {"data": {"generations": {"edges": []}}}
    refused(batch[1], "defer")


async def test_only_multipart_acceptable_is_406_saying_why(client: GraphQLClient) -> None:
    status, media, body = await post(client, {"query": HISTORY_DEFERRED}, "multipart/mixed;deferSpec=20220824")
    assert status == 406 and media.startswith("application/json")
    assert "@defer and @stream are not supported" in body["errors"][0]["message"]


async def test_without_a_token_the_refusal_comes_first_and_reveals_nothing(client: GraphQLClient) -> None:
    r = await client.http.post("/graphql", json={"query": HISTORY_DEFERRED}, headers={"Accept": APOLLO_2022})
    assert r.status_code == 400
    refused(r.json(), "defer")


async def test_websocket_subscribe_of_a_deferred_query_is_an_error_message(client: GraphQLClient) -> None:
    async with AsgiWebSocket(client.app) as ws:
        await ws.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {client.token}"}})
        assert (await ws.receive_json())["type"] == "connection_ack"
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": HISTORY_DEFERRED}})
        message = await ws.receive_json()
        assert message["type"] == "error" and message["id"] == "1"
        refused({"errors": message["payload"]}, "defer")
        # the connection stays usable
        await ws.send_json({"id": "2", "type": "subscribe", "payload": {"query": HISTORY}})
        assert (await ws.receive_json())["payload"] == {"data": {"generations": {"edges": []}}}
        assert (await ws.receive_json()) == {"id": "2", "type": "complete"}
