"""Security headers and CORS through the real app."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from graph.security import API_POLICY, page_policy
from tests.fixtures.app import GraphQLClient, SettingsFactory, running_app

ORIGIN = "https://app.example.com"


@pytest.fixture
async def client(make_settings: SettingsFactory) -> AsyncIterator[GraphQLClient]:
    async with running_app(make_settings(cors_origins=ORIGIN)) as c:
        yield c


async def test_api_responses_carry_a_strict_policy(client: GraphQLClient) -> None:
    response = await client.http.post("/graphql", json={"query": "{ __typename }"})
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["content-security-policy"] == API_POLICY
    assert "strict-transport-security" not in response.headers  # only in production
    health = await client.http.get("/health")
    assert health.headers["content-security-policy"] == API_POLICY


async def test_graphiql_gets_a_page_policy_of_our_origin_only(client: GraphQLClient) -> None:
    response = await client.http.get("/graphql", headers={"accept": "text/html"})
    policy = response.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    # GraphiQL's assets are served by genhub: no CDN, no inline script, and it must not be framed
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    # the <style> element GraphiQL's dialogs add (graph/security.py); fonts are data: URLs in its CSS
    assert directives["style-src-elem"] == "'self' 'unsafe-inline'"
    assert directives["font-src"] == "'self' data:"
    assert directives["default-src"] == "'self'"
    assert directives["connect-src"].startswith("'self'")
    assert "ws://testserver" in directives["connect-src"]
    assert directives["frame-ancestors"] == "'none'"
    assert "unpkg.com" not in response.text and "<script>" not in response.text


def test_page_policy_allows_no_plain_ws_in_production_and_no_header_injection() -> None:
    assert "ws://" not in page_policy("api.example.com", production=True)
    assert "wss://api.example.com" in page_policy("api.example.com", production=True)
    assert "ws" not in page_policy("evil; script-src *", production=False).split("connect-src")[1].split(";")[0]


async def test_cors_preflight_allows_only_the_configured_origin(client: GraphQLClient) -> None:
    preflight = {
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization,content-type",
    }
    allowed = await client.http.options("/graphql", headers={"origin": ORIGIN, **preflight})
    denied = await client.http.options("/graphql", headers={"origin": "https://evil.example", **preflight})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in allowed.headers  # bearer tokens, never cookies
    assert denied.status_code == 400
    assert "access-control-allow-origin" not in denied.headers
    simple = await client.http.post("/graphql", json={"query": "{ __typename }"}, headers={"origin": ORIGIN})
    assert simple.headers["access-control-allow-origin"] == ORIGIN
    assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()


async def test_cors_preflight_allows_the_headers_apollo_client_sends(client: GraphQLClient) -> None:
    # given a browser's preflight for an Apollo Client upload from a named app
    apollo = "apollo-require-preflight,apollographql-client-name,apollographql-client-version,x-apollo-operation-name"
    preflight = {"origin": ORIGIN, "access-control-request-method": "POST", "access-control-request-headers": apollo}
    # when it asks
    answer = await client.http.options("/graphql", headers=preflight)
    # then every header is allowed, and an unknown one still is not
    assert answer.status_code == 200
    allowed = {h.strip().lower() for h in answer.headers["access-control-allow-headers"].split(",")}
    assert set(apollo.split(",")) <= allowed
    other = await client.http.options(
        "/graphql", headers={**preflight, "access-control-request-headers": "x-something-else"}
    )
    assert other.status_code == 400
