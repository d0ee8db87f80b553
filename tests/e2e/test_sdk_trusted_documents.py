"""The SDK's trusted-documents manifest (sdk/typescript/persisted-query-manifest.json, made by `make sdk`).

`genhub documents check` accepts it, and a `genhub serve` that runs only trusted documents
(TRUSTED_DOCUMENTS_ONLY=true with that manifest) runs the SDK's operations named by their
ids: through the generated Python client with its TrustedDocumentsHttpClient, and with
plain httpx (`extensions.persistedQuery` over POST, `documentId` over GET). The client's own
text and any id the manifest lacks are refused.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import OperationDefinitionNode, parse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.server import GENHUB, Server, serve

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "sdk" / "typescript" / "persisted-query-manifest.json"
PACKAGED = ROOT / "sdk" / "python" / "genhub_client" / "persisted-query-manifest.json"

sys.path.insert(0, str(ROOT / "sdk" / "python"))

from genhub_client import (  # noqa: E402
    Catalogue,
    GenhubClient,
    GraphQLClientHttpError,
    LoginInput,
    LoginLoginAuthPayload,
)
from genhub_client.trusted_documents import TrustedDocumentsHttpClient, manifest_ids  # noqa: E402

pytestmark = pytest.mark.slow

DEMO = LoginInput(email="demo@genhub.local", password="demo-password-123")


def sdk_operation_names() -> set[str]:
    names = set()
    for path in (ROOT / "sdk" / "operations").glob("*.graphql"):
        for definition in parse(path.read_text(encoding="utf-8")).definitions:
            assert isinstance(definition, OperationDefinitionNode) and definition.name
            names.add(definition.name.value)
    return names


def manifest() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(MANIFEST.read_text(encoding="utf-8"))
    return loaded


def refusal(response: httpx.Response) -> tuple[int, str | None]:
    errors = response.json().get("errors") or [{}]
    return response.status_code, errors[0].get("extensions", {}).get("code")


@pytest.fixture(scope="module")
def trusted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"TRUSTED_DOCUMENTS_ONLY": "true", "TRUSTED_DOCUMENTS_MANIFEST": str(MANIFEST)}
    with serve(env, tmp_path_factory.mktemp("sdk-trusted")) as server:
        yield server


def test_the_manifest_holds_every_sdk_operation_and_passes_the_check() -> None:
    # given the committed manifest (and the copy in the Python package)
    # when `genhub documents check` reads it
    checked = subprocess.run(
        [GENHUB, "documents", "check", str(MANIFEST), "--json"], capture_output=True, text=True, timeout=60, check=False
    )
    # then every operation of sdk/operations is there, once, and passes
    assert checked.returncode == 0, checked.stdout + checked.stderr
    report = json.loads(checked.stdout)
    assert report["ok"] and sorted(o["name"] for o in report["operations"]) == sorted(sdk_operation_names())
    assert PACKAGED.read_bytes() == MANIFEST.read_bytes()
    assert set(manifest_ids()) == sdk_operation_names()


async def test_the_python_client_runs_sdk_operations_by_id_on_a_trusted_only_server(trusted: Server) -> None:
    url = f"{trusted.url}/graphql"
    # given the client sending its operations by id: signing in, then reading as the demo account
    async with GenhubClient(url=url, http_client=TrustedDocumentsHttpClient()) as anonymous:
        login = (await anonymous.login(DEMO)).login
    assert isinstance(login, LoginLoginAuthPayload), login
    by_id = TrustedDocumentsHttpClient(headers={"Authorization": f"Bearer {login.access_token}"})
    async with GenhubClient(url=url, http_client=by_id) as genhub:
        catalogue = await genhub.catalogue()
        keys = (await genhub.api_keys()).api_keys
    # and the same client sending its own text
    async with GenhubClient(url=url, headers={"Authorization": f"Bearer {login.access_token}"}) as by_text:
        with pytest.raises(GraphQLClientHttpError) as refused:
            await by_text.credits()

    # then the operations ran and came back as the usual typed models; the text was refused
    assert isinstance(catalogue, Catalogue) and catalogue.me.email == DEMO.email and catalogue.models
    assert isinstance(keys, list)
    assert refusal(refused.value.response) == (400, "PERSISTED_QUERY_NOT_TRUSTED")


def test_plain_http_names_an_sdk_operation_by_its_manifest_id(trusted: Server) -> None:
    ids = manifest_ids(manifest())
    url = f"{trusted.url}/graphql"
    # POST with Apollo's extension, GET with the persisted documents proposal's documentId
    posted = httpx.post(
        url,
        json={"extensions": {"persistedQuery": {"version": 1, "sha256Hash": ids["ImageModels"]}}},
        timeout=10,
    )
    got = httpx.get(url, params={"documentId": f"sha256:{ids['ImageModels']}"}, timeout=10)
    # a mutation by id over GET is not run
    mutation = httpx.get(url, params={"documentId": f"sha256:{ids['Login']}"}, timeout=10)

    for answer in (posted, got):
        assert answer.status_code == 200 and answer.json()["data"]["models"], answer.text
    assert mutation.status_code == 405


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    named=st.one_of(
        st.text(max_size=80),
        st.text("0123456789abcdef", min_size=64, max_size=64),
        st.sampled_from(sorted(manifest_ids(manifest()).values())).map(
            lambda i: i[:-1] + ("0" if i[-1] != "0" else "1")
        ),
    ),
    how=st.sampled_from(["apq", "documentId"]),
)
def test_any_id_the_manifest_lacks_is_refused_never_run(trusted: Server, named: str, how: str) -> None:
    # given an id that is not one of the manifest's (random text, random digests, a changed digit)
    known = set(manifest_ids(manifest()).values())
    if named in known or named.removeprefix("sha256:") in known:
        return
    body: dict[str, Any] = (
        {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": named}}}
        if how == "apq"
        else {"documentId": named}
    )
    # when it is sent as a document's name
    answer = httpx.post(f"{trusted.url}/graphql", json=body, timeout=10)
    # then a client error says so, and nothing ran
    assert answer.status_code == 400, answer.text
    payload = answer.json()
    assert payload.get("data") is None and payload["errors"], payload
    assert payload["errors"][0]["extensions"]["code"] in {
        "PERSISTED_QUERY_NOT_TRUSTED",
        "BAD_REQUEST",
    }
