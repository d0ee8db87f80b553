"""@defer and @stream from real JavaScript clients against `genhub serve`: a clear error, then business as usual.

Apollo Client 4 with each of its incremental handlers (the 2022-08-24 format and graphql-js
17's) and urql send the multipart Accept headers of incremental delivery; the server answers
with graphql-response+json and the validation error of graph/incremental_delivery.py, which
the clients surface as GraphQL errors (docs/clients.md, "@defer and @stream").
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.node_tools import NodeTools
from tests.fixtures.server import Server, serve

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parent / "js" / "defer_client.mjs"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serve({}, tmp_path_factory.mktemp("defer")) as running:
        yield running


def test_apollo_and_urql_get_the_refusal_as_graphql_errors(server: Server, node_tools: NodeTools) -> None:
    # when each client asks for a deferred, a streamed and a plain query
    done = node_tools.run(SCRIPT, server.url, timeout=120)
    assert done.returncode == 0, done.stderr
    results: dict[str, Any] = json.loads(done.stdout)
    for name, result in results.items():
        # then the directives are refused with the validation code, naming the directive
        for key, directive in (("deferred", "defer"), ("streamed", "stream")):
            outcome = result[key]
            assert outcome.get("error"), (name, key, outcome)
            assert outcome["codes"] == ["GRAPHQL_VALIDATION_FAILED"], (name, key, outcome)
            assert outcome["messages"][0].startswith(f"@{directive} is not supported by this server"), outcome
        # and the plain query is answered (the server seeds its demo models)
        assert result["plain"]["data"]["models"], (name, result["plain"])
        # every request asked for multipart (the refused ones) and never got it
        assert any("multipart/mixed" in (e["accept"] or "") for e in result["exchanges"]), (name, result)
        assert all(not e["contentType"].startswith("multipart/") for e in result["exchanges"]), (name, result)
        assert all(e["status"] in (200, 400) for e in result["exchanges"]), (name, result)
