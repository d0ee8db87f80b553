"""GraphQL over SSE against hostile requests: generated bodies, Accept and Authorization headers, on a real server.

Whatever arrives, the answer is never a 500; a request that is no GraphQL request, or whose
token proves nothing, is refused before any stream opens; a stream that does open ends with
`complete` (queries and mutations, and refused documents, never hang).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.server import Server, serve

pytestmark = [pytest.mark.slow]

EVENT_STREAM = "text/event-stream"
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
LOGIN = """mutation { login(input: {email: "demo@genhub.local", password: "demo-password-123"}) {
  ... on AuthPayload { accessToken } } }"""

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
#: JSON bodies that are no single GraphQL request: wrong shapes and wrong field types.
malformed_requests = st.one_of(
    json_values.filter(lambda v: not isinstance(v, dict)),
    st.fixed_dictionaries({}, optional={"variables": json_values, "operationName": json_values}),
    st.fixed_dictionaries({"query": json_values.filter(lambda v: not isinstance(v, str))}),
    st.fixed_dictionaries(
        {"query": st.just("{ __typename }")},
        optional={
            "variables": json_values.filter(lambda v: v is not None and not isinstance(v, dict)),
            "extensions": json_values.filter(lambda v: v is not None and not isinstance(v, dict)),
        },
    ).filter(lambda d: len(d) > 1),
    st.lists(st.just({"query": "{ __typename }"}), min_size=1, max_size=3),
)
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80).map(str.strip)


@pytest.fixture(scope="module")
def server(tmp_path_factory: Any) -> Iterator[Server]:
    tmp: Path = tmp_path_factory.mktemp("sse-hostile")
    with serve({"SSE_KEEPALIVE_SECONDS": "30"}, tmp, timeout=120) as running:
        yield running


@pytest.fixture(scope="module")
def token(server: Server) -> str:
    answer = httpx.post(f"{server.url}/graphql", json={"query": LOGIN}, timeout=15).json()
    return str(answer["data"]["login"]["accessToken"])


def post(server: Server, content: bytes, headers: dict[str, str]) -> tuple[httpx.Response, bytes]:
    """The answer and its whole body (a stream must end by itself: a hang fails the read timeout)."""
    with (
        httpx.Client(timeout=httpx.Timeout(15)) as client,
        client.stream("POST", f"{server.url}/graphql", content=content, headers=headers) as response,
    ):
        return response, response.read()


def assert_refused_or_completed(response: httpx.Response, body: bytes) -> None:
    assert response.status_code < 500, body
    if response.headers.get("content-type", "").startswith(EVENT_STREAM):
        assert response.status_code == 200
        assert body.endswith(b"event: complete\ndata:\n\n"), body[-200:]
    else:
        assert response.status_code >= 400 or body.startswith(b"{"), body[:200]


@SETTINGS
@given(body=malformed_requests)
def test_a_body_that_is_no_graphql_request_is_refused_before_any_stream(server: Server, token: str, body: Any) -> None:
    headers = {"Accept": EVENT_STREAM, "Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    response, content = post(server, json.dumps(body).encode(), headers)
    assert 400 <= response.status_code < 500, content
    assert not response.headers["content-type"].startswith(EVENT_STREAM)
    assert json.loads(content)["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


@SETTINGS
@given(body=st.binary(max_size=300))
def test_bytes_that_are_no_json_are_refused_before_any_stream(server: Server, body: bytes) -> None:
    response, content = post(server, body, {"Accept": EVENT_STREAM, "Content-Type": "application/json"})
    assert 400 <= response.status_code < 500, content
    assert not response.headers["content-type"].startswith(EVENT_STREAM)


@SETTINGS
@given(authorization=header_text)
def test_a_subscription_with_any_made_up_token_gets_401_before_any_stream(server: Server, authorization: str) -> None:
    body = json.dumps({"query": "subscription { creditsChanged { balance } }"}).encode()
    headers = {"Accept": EVENT_STREAM, "Content-Type": "application/json", "Authorization": authorization}
    response, content = post(server, body, headers)
    assert response.status_code == 401, content
    assert not response.headers["content-type"].startswith(EVENT_STREAM)


@SETTINGS
@given(query=st.text(max_size=120) | st.sampled_from(["subscription {", "{ models { id } }", "query A { a } b"]))
def test_any_document_is_refused_or_answered_and_completed(server: Server, token: str, query: str) -> None:
    # (a subscription that starts would stream for ever: only documents that are no working subscription)
    body = json.dumps({"query": query}).encode()
    headers = {"Accept": EVENT_STREAM, "Content-Type": "application/json"}
    response, content = post(server, body, headers)
    assert_refused_or_completed(response, content)


@SETTINGS
@given(accept=header_text.map(lambda text: f"{text}, {EVENT_STREAM}" if "event" in text else text))
def test_any_accept_header_gets_a_json_answer_a_stream_or_406(server: Server, accept: str) -> None:
    body = json.dumps({"query": "{ models { id } }"}).encode()
    response, content = post(server, body, {"Accept": accept, "Content-Type": "application/json"})
    assert response.status_code in (200, 406), content
    assert_refused_or_completed(response, content)


@SETTINGS
@given(
    params=st.dictionaries(
        st.sampled_from(["query", "variables", "operationName", "extensions", "documentId", "other"]),
        header_text,
        max_size=4,
    )
)
def test_any_query_string_over_get_is_refused_or_answered_and_completed(server: Server, params: dict[str, str]) -> None:
    with (
        httpx.Client(timeout=httpx.Timeout(15)) as client,
        client.stream("GET", f"{server.url}/graphql", params=params, headers={"Accept": EVENT_STREAM}) as response,
    ):
        body = response.read()
    assert_refused_or_completed(response, body)
    if "query" not in params and "documentId" not in params and "extensions" not in params:
        assert response.status_code == 400 and not response.headers["content-type"].startswith(EVENT_STREAM)
