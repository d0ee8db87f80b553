"""JSON POSTs to /graphql are answered before FastAPI's routing; everything else goes on to the app."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from graph.http import GraphQLHttp
from graph.http_endpoint import GraphQLEndpoint
from tests.fixtures.app import GraphQLClient, SettingsFactory, call_asgi, running_app

QUERY = b'{"query": "query T { __typename }"}'


@pytest.fixture
async def client(make_settings: SettingsFactory) -> AsyncIterator[GraphQLClient]:
    async with running_app(make_settings(cors_origins=["https://app.example.com"])) as c:
        yield c


class Downstream:
    """The rest of the app, as the endpoint sees it: it only records what reaches it."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.seen.append((scope["method"], scope["path"]))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def drive(
    endpoint: GraphQLEndpoint,
    client: GraphQLClient,
    method: str,
    path: str,
    content_type: str,
    body: bytes | list[bytes],
) -> tuple[int, dict[bytes, bytes], bytes]:
    headers = [(b"content-type", content_type.encode())]
    # what the app's outer layers put in the scope before the endpoint sees it
    extra = {"app": client.app, "state": {"request_id": "fixed-id"}}
    return await call_asgi(endpoint, method=method, path=path, headers=headers, body=body, **extra)


async def test_a_json_post_is_answered_without_reaching_the_router(client: GraphQLClient) -> None:
    downstream = Downstream()
    endpoint = GraphQLEndpoint(downstream, handler=GraphQLHttp(client.app.state.schema, client.app.state.settings))

    for content_type in ("application/json", "application/json; charset=utf-8", "application/graphql-response+json"):
        status, headers, body = await drive(endpoint, client, "POST", "/graphql", content_type, QUERY)
        assert status == 200
        assert json.loads(body) == {"data": {"__typename": "Query"}}
        assert headers[b"content-length"] == str(len(body)).encode()
        assert headers[b"content-type"].startswith(b"application/json")
    assert downstream.seen == []


@pytest.mark.parametrize(
    ("method", "path", "content_type"),
    [
        ("GET", "/graphql", "application/json"),
        ("POST", "/graphql", "multipart/form-data; boundary=x"),
        ("POST", "/graphql", "text/plain"),
        ("POST", "/graphql/", "application/json"),
        ("POST", "/health", "application/json"),
        ("PUT", "/graphql", "application/json"),
    ],
)
async def test_everything_else_goes_on_to_the_app(
    client: GraphQLClient, method: str, path: str, content_type: str
) -> None:
    downstream = Downstream()
    endpoint = GraphQLEndpoint(downstream, handler=GraphQLHttp(client.app.state.schema, client.app.state.settings))

    status, _, _ = await drive(endpoint, client, method, path, content_type, QUERY)

    assert status == 204 and downstream.seen == [(method, path)]


async def test_refusals_keep_their_status_and_headers(client: GraphQLClient) -> None:
    downstream = Downstream()
    endpoint = GraphQLEndpoint(downstream, handler=GraphQLHttp(client.app.state.schema, client.app.state.settings))

    status, _, body = await drive(endpoint, client, "POST", "/graphql", "application/json", b"{not json")
    assert status == 400 and json.loads(body)["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    oversized = b'{"query": "' + b"x" * (client.app.state.settings.max_body_bytes + 1) + b'"}'
    status, _, _ = await drive(endpoint, client, "POST", "/graphql", "application/json", oversized)
    assert status == 413


async def test_a_body_in_pieces_without_a_length_is_read_whole_and_counted_as_it_arrives(
    client: GraphQLClient,
) -> None:
    endpoint = GraphQLEndpoint(Downstream(), handler=GraphQLHttp(client.app.state.schema, client.app.state.settings))
    limit = client.app.state.settings.max_body_bytes

    status, _, body = await drive(
        endpoint, client, "POST", "/graphql", "application/json", [QUERY[:7], QUERY[7:20], QUERY[20:]]
    )
    assert status == 200 and json.loads(body) == {"data": {"__typename": "Query"}}
    # no declared length: refused once what arrived passes the limit
    pieces = [b'{"query": "', *[b"x" * 4096] * (limit // 4096 + 1), b'"}']
    status, _, body = await drive(endpoint, client, "POST", "/graphql", "application/json", pieces)
    assert status == 413 and "larger than" in json.loads(body)["errors"][0]["message"]


async def test_a_client_gone_before_the_end_of_its_body_gets_no_answer(client: GraphQLClient) -> None:
    endpoint = GraphQLEndpoint(Downstream(), handler=GraphQLHttp(client.app.state.schema, client.app.state.settings))

    with pytest.raises(ClientDisconnect):  # uvicorn drops it; nothing is executed
        await drive(endpoint, client, "POST", "/graphql", "application/json", [QUERY[:7], b""])


async def test_the_app_still_wraps_the_endpoint_in_its_middlewares(client: GraphQLClient) -> None:
    # through the whole app: request id, security headers and CORS come from the layers around it
    r = await client.http.post(
        "/graphql",
        content=QUERY,
        headers={"Content-Type": "application/json", "Origin": "https://app.example.com", "X-Request-ID": "abc-123"},
    )

    assert r.status_code == 200 and r.json() == {"data": {"__typename": "Query"}}
    assert r.headers["x-request-id"] == "abc-123"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-security-policy"].startswith("default-src 'none'")
    assert r.headers["access-control-allow-origin"] == "https://app.example.com"


async def test_refusals_carry_the_request_id_the_outer_layer_gave(client: GraphQLClient) -> None:
    # given the endpoint alone, with the request id RequestIdMiddleware put in the scope ("fixed-id")
    endpoint = GraphQLEndpoint(Downstream(), handler=GraphQLHttp(client.app.state.schema, client.app.state.settings))
    oversized = b'{"query": "' + b"x" * (client.app.state.settings.max_body_bytes + 1) + b'"}'

    for body in (b"{not json", b'{"query": NaN}', oversized):
        # when a body it must refuse arrives
        status, _, answer = await drive(endpoint, client, "POST", "/graphql", "application/json", body)
        # then the refusal names that id, as the X-Request-ID header will
        assert status in (400, 413)
        assert json.loads(answer)["errors"][0]["extensions"] == {"code": "BAD_REQUEST", "requestId": "fixed-id"}
