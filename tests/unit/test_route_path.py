"""The JSON POST fast path matches the path the router would: `path` less the ASGI root_path."""

from __future__ import annotations

import pytest

from graph.http_endpoint import route_path


@pytest.mark.parametrize(
    ("path", "root_path", "expected"),
    [
        ("/graphql", "", "/graphql"),
        ("/api/graphql", "/api", "/graphql"),
        ("/api", "/api", ""),
        ("/apix/graphql", "/api", "/apix/graphql"),  # a prefix of a segment is not the root
        ("/graphql", "/api", "/graphql"),  # a server that left root_path in place
    ],
)
def test_route_path(path: str, root_path: str, expected: str) -> None:
    assert route_path({"path": path, "root_path": root_path}) == expected
