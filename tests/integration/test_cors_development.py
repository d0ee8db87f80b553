"""CORS and the WebSocket's Origin check: any http://localhost:<port> page in development,
exactly CORS_ORIGINS in production; lookalike origins never."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import httpx
import pytest
from fastapi import FastAPI, WebSocket
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entrypoints.api import create_app
from graph.websocket import build_ws_router
from tests.fixtures.app import GraphQLClient, SettingsFactory, app_settings, running_app
from tests.integration.asgi_websocket import AsgiWebSocket, WebSocketClosed

CONFIGURED = "https://app.example.com"
LOCAL = ["http://localhost:5173", "http://127.0.0.1:3000", "http://localhost", "http://127.0.0.1:8000"]
HOSTILE_ORIGINS = [
    "http://localhost.evil.com",
    "http://localhost.evil.com:3000",
    "http://evil.com/localhost:3000",
    "http://evil.com#http://localhost:3000",
    "http://localhost:3000.evil.com",
    "http://localhost:3000/",
    "http://user@localhost:3000",
    "http://127.0.0.1.nip.io:3000",
    "http://127.0.0.2:3000",
    "http://0.0.0.0:3000",
    "https://localhost:3000",
    "ws://localhost:3000",
    "http://localhost:3000 http://evil.com",
    "http://LOCALHOST:3000",
    "null",
    "",
]
PREFLIGHT = {"access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type"}
GENERATED = settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
#: The oracle, written apart from graph/cors.py: the scheme http, a local host, a port of digits or none.
ORACLE = re.compile(r"http://(localhost|127\.0\.0\.1)(:\d{1,5})?")


@pytest.fixture(scope="module")
async def development(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[GraphQLClient]:
    settings_ = app_settings(tmp_path_factory.mktemp("cors-dev"), environment="development", cors_origins=CONFIGURED)
    async with running_app(settings_) as client:
        yield client


def production_app(make_settings: SettingsFactory, tmp_path: Path) -> FastAPI:
    """A production app, not started: CORS preflights and Origin refusals need nothing behind them."""
    return create_app(
        make_settings(
            environment="production",
            database_url="postgresql+asyncpg://genhub@127.0.0.1:1/never",
            redis_url="redis://127.0.0.1:1/0",
            jwt_secret="a-production-secret-that-is-long-enough-0123",
            local_storage_path=tmp_path / "chunks",
            smtp_host="127.0.0.1",
            mail_from="noreply@genhub.example",
            cors_origins=CONFIGURED,
        )
    )


async def preflight(http: httpx.AsyncClient, origin: str) -> httpx.Response:
    return await http.options("/graphql", headers={"origin": origin, **PREFLIGHT})


async def handshake_accepted(app: FastAPI, origin: str) -> bool:
    try:
        async with AsgiWebSocket(app, headers={"origin": origin}):
            return True
    except WebSocketClosed:
        return False
    except AssertionError:  # a denial response instead of an accept or a close
        return False


@pytest.mark.parametrize("origin", [*LOCAL, CONFIGURED])
async def test_development_allows_local_pages_on_any_port_and_the_configured_origins(
    development: GraphQLClient, origin: str
) -> None:
    # when a page on a local dev server (or a configured origin) preflights and then posts
    answer = await preflight(development.http, origin)
    posted = await development.http.post("/graphql", json={"query": "{ __typename }"}, headers={"origin": origin})
    # then both answers allow exactly that origin, without credentials
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == origin
    assert "access-control-allow-credentials" not in answer.headers
    assert posted.headers["access-control-allow-origin"] == origin


@pytest.mark.parametrize("origin", HOSTILE_ORIGINS)
async def test_development_refuses_lookalikes_of_local_origins(development: GraphQLClient, origin: str) -> None:
    answer = await preflight(development.http, origin)
    posted = await development.http.post("/graphql", json={"query": "{ __typename }"}, headers={"origin": origin})
    assert "access-control-allow-origin" not in answer.headers
    assert "access-control-allow-origin" not in posted.headers


_PIECES = st.sampled_from(
    ["http://", "https://", "localhost", "127.0.0.1", ":", "3000", "5173", "99999", ".", "evil.com", "/", "#", "@", " "]
)


@GENERATED
@given(
    origin=st.one_of(
        st.lists(_PIECES, max_size=6).map("".join),
        st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40),
    )
)
async def test_development_allows_a_generated_origin_exactly_when_it_is_a_local_one(
    development: GraphQLClient, origin: str
) -> None:
    answer = await preflight(development.http, origin)
    allowed = answer.headers.get("access-control-allow-origin") == origin
    assert allowed == (ORACLE.fullmatch(origin) is not None or origin == CONFIGURED), origin


@pytest.mark.parametrize("origin", LOCAL)
async def test_production_allows_no_local_origin(make_settings: SettingsFactory, tmp_path: Path, origin: str) -> None:
    # given a production app configured for one origin
    app = production_app(make_settings, tmp_path)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        local = await preflight(http, origin)
        configured = await preflight(http, CONFIGURED)
    # then a page on localhost gets nothing and the configured origin is allowed
    assert local.status_code == 400 and "access-control-allow-origin" not in local.headers
    assert configured.headers["access-control-allow-origin"] == CONFIGURED
    # and the WebSocket's Origin check (asked directly: a handshake needs the started app) agrees
    router = build_ws_router(app.state.schema, app.state.settings)
    handshake = cast(WebSocket, None)  # the check reads the origin only
    assert not router.is_websocket_origin_allowed(handshake, origin)
    assert router.is_websocket_origin_allowed(handshake, CONFIGURED)


async def test_development_websocket_accepts_local_pages_and_refuses_lookalikes(development: GraphQLClient) -> None:
    for origin in LOCAL:
        assert await handshake_accepted(development.app, origin), origin
    for origin in ("http://localhost.evil.com:3000", "http://evil.com/localhost:3000", "https://localhost:3000"):
        assert not await handshake_accepted(development.app, origin), origin
