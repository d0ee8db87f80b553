"""A client-chosen X-Request-ID is echoed only when it is plainly an id: it lands in headers and logs."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.app import GraphQLClient, app_settings, running_app

SAFE = re.compile(r"[A-Za-z0-9._:-]{1,64}")


@pytest.fixture(scope="module")
async def client(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[GraphQLClient]:
    async with running_app(app_settings(tmp_path_factory.mktemp("request-ids"))) as c:
        yield c


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    offered=st.one_of(
        st.from_regex(SAFE, fullmatch=True).map(str.encode),
        st.binary(min_size=1, max_size=100).filter(lambda b: b"\r" not in b and b"\n" not in b and b"\0" not in b),
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), min_size=1, max_size=80).map(
            lambda t: t.encode("latin-1")
        ),
    )
)
async def test_only_plain_ids_are_echoed(client: GraphQLClient, offered: bytes) -> None:
    response = await client.http.get("/health", headers=[(b"x-request-id", offered)])
    echoed = response.headers["x-request-id"]
    if SAFE.fullmatch(offered.decode("latin-1")):
        assert echoed == offered.decode("ascii")
    else:
        assert re.fullmatch(r"[0-9a-f]{32}", echoed), (offered, echoed)
