"""Persisted queries and trusted documents against `genhub serve` processes: curl, and Apollo Client's real link.

Three servers: APQ on (the in-process store), APQ off, and trusted documents only with a
manifest made by Apollo's own generator (@apollo/generate-persisted-query-manifest) from
.graphql files. Apollo Client 4's PersistedQueryLink runs in node (tests/e2e/js/apq_client.mjs);
the server's own count of hash-only hits (/metrics) shows the link's second request
carried no text.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from domain.persisted_documents import document_hash
from infrastructure.trusted_documents import load_trusted_documents
from tests.fixtures.node_tools import NodeTools
from tests.fixtures.server import GENHUB, Server, serve

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parent / "js" / "apq_client.mjs"
REPO = Path(__file__).resolve().parents[2]
MODELS = "query Models { models { slug } }"
LOGOUT = "mutation Out { logout { __typename } }"
OPERATIONS = {"Models": "query Models { models { slug } }", "ModelKinds": "query ModelKinds { models { slug kind } }"}


def apq(digest: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


def curl(server: Server, *args: str) -> tuple[int, Any]:
    """curl as a reader would run it; the status and the decoded JSON body."""
    assert shutil.which("curl"), "curl is needed on PATH"
    done = subprocess.run(
        ["curl", "-sS", "-w", "\n%{http_code}", *args, f"{server.url}/graphql"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    body, _, status = done.stdout.rpartition("\n")
    return int(status), json.loads(body)


def post(server: Server, body: dict[str, Any]) -> tuple[int, Any]:
    return curl(server, "-H", "Content-Type: application/json", "--data", json.dumps(body))


def get(server: Server, **params: str) -> tuple[int, Any]:
    pairs = [arg for key, value in params.items() for arg in ("--data-urlencode", f"{key}={value}")]
    return curl(server, "-G", *pairs)


def ran(answer: tuple[int, Any]) -> bool:
    """The operation ran: 200 and the catalogue's models (the server seeds its demo models)."""
    status, body = answer
    return status == 200 and "errors" not in body and isinstance(body["data"]["models"], list)


def code(body: Any) -> str | None:
    errors = body.get("errors") or [{}]
    return str(errors[0].get("extensions", {}).get("code"))


def hits(server: Server, outcome: str) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    found = re.search(rf'^genhub_persisted_documents_total\{{outcome="{outcome}"\}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


def node_json(node_tools: NodeTools, *args: str) -> Any:
    done = node_tools.run(SCRIPT, *args, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def apq_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serve({"PERSISTED_QUERY_MAX_BYTES": "1024"}, tmp_path_factory.mktemp("apq")) as server:
        yield server


@pytest.fixture(scope="module")
def manifest(node_tools: NodeTools, tmp_path_factory: pytest.TempPathFactory) -> Path:
    sources = tmp_path_factory.mktemp("operations")
    for name, text in OPERATIONS.items():
        (sources / f"{name}.graphql").write_text(text + "\n")
    out = sources / "persisted-query-manifest.json"
    node_json(node_tools, "-", "manifest", str(sources), str(out))
    return out


def test_curl_get_and_post_miss_register_hit_and_refuse(apq_server: Server) -> None:
    digest = document_hash(MODELS)
    not_found = {"message": "PersistedQueryNotFound", "code": "PERSISTED_QUERY_NOT_FOUND"}
    # an unknown hash: the spec's answer, 200, over POST and GET
    for status, body in (
        post(apq_server, {"extensions": apq(digest)}),
        get(apq_server, extensions=json.dumps(apq(digest))),
    ):
        assert status == 200 and {"message": body["errors"][0]["message"], "code": code(body)} == not_found
    # the text with its hash registers it; then the hash alone runs, over GET and POST
    assert ran(post(apq_server, {"query": MODELS, "extensions": apq(digest)}))
    assert ran(get(apq_server, extensions=json.dumps(apq(digest))))
    assert ran(post(apq_server, {"extensions": apq(digest)}))
    # a hash that is not the text's
    status, body = post(apq_server, {"query": MODELS, "extensions": apq(document_hash("query X { me { id } }"))})
    assert (status, body["errors"][0]["message"]) == (400, "provided sha does not match query")
    # an oversized document and an invalid one run (or fail validation) and are not stored
    big = "query Big { models { slug } }" + " " * 2000
    invalid = "query Invalid { nope }"
    assert ran(post(apq_server, {"query": big, "extensions": apq(document_hash(big))}))
    status, body = post(apq_server, {"query": invalid, "extensions": apq(document_hash(invalid))})
    assert status == 200 and "nope" in body["errors"][0]["message"]
    for text in (big, invalid):
        assert code(post(apq_server, {"extensions": apq(document_hash(text))})[1]) == "PERSISTED_QUERY_NOT_FOUND"
    # GET stays query-only, with or without the text
    assert get(apq_server, query=LOGOUT, extensions=json.dumps(apq(document_hash(LOGOUT))))[0] == 405
    post(apq_server, {"query": LOGOUT, "extensions": apq(document_hash(LOGOUT))})
    assert get(apq_server, extensions=json.dumps(apq(document_hash(LOGOUT))))[0] == 405


def test_apollo_link_misses_retries_with_the_text_then_sends_hashes_only(
    apq_server: Server, node_tools: NodeTools
) -> None:
    before = hits(apq_server, "hit")
    result = node_json(node_tools, apq_server.url, "apq")
    # POST: the first request misses, the link retries with the text, the next sends the hash alone
    assert result["first"] == result["second"] and result["first"]["data"]["models"]
    assert result["postRequests"] == [
        {"method": "POST", "query": False, "hash": True},
        {"method": "POST", "query": True, "hash": True},
    ]
    assert result["secondRequests"] == [{"method": "POST", "query": False, "hash": True}]
    # useGETForHashedQueries: hashes over GET, the registration over POST
    assert result["getFirstRequests"] == [
        {"method": "GET", "query": False, "hash": True},
        {"method": "POST", "query": True, "hash": True},
    ]
    assert result["getSecondRequests"] == [{"method": "GET", "query": False, "hash": True}]
    assert result["getSecond"] == result["getFirst"] and result["getSecond"]["data"]["models"]
    # and the server counted the two hash-only runs
    assert hits(apq_server, "hit") - before == 2


def test_apollo_link_falls_back_to_full_documents_when_not_supported(node_tools: NodeTools, tmp_path: Path) -> None:
    with serve({"PERSISTED_QUERIES_ENABLED": "false"}, tmp_path) as server:
        status, body = post(server, {"extensions": apq(document_hash(MODELS))})
        assert status == 200 and code(body) == "PERSISTED_QUERY_NOT_SUPPORTED"
        result = node_json(node_tools, server.url, "fallback")
    assert result["first"]["data"]["models"] and result["second"]["data"]["models"]
    assert result["firstRequests"] == [
        {"method": "POST", "query": False, "hash": True},
        {"method": "POST", "query": True, "hash": False},
    ]
    assert result["secondRequests"] == [{"method": "POST", "query": True, "hash": False}]


def test_a_trusted_only_server_runs_its_manifest_for_the_apollo_link_and_refuses_the_rest(
    manifest: Path, node_tools: NodeTools, tmp_path: Path
) -> None:
    # the manifest Apollo's generator wrote passes the check against this build's schema
    checked = subprocess.run(
        [GENHUB, "documents", "check", str(manifest), "--json"], capture_output=True, text=True, timeout=60, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert sorted(o["name"] for o in json.loads(checked.stdout)["operations"]) == sorted(OPERATIONS)
    env = {"TRUSTED_DOCUMENTS_MANIFEST": str(manifest), "TRUSTED_DOCUMENTS_ONLY": "true", "GRAPHIQL": "true"}
    with serve(env, tmp_path) as server:
        result = node_json(node_tools, server.url, "trusted", str(manifest))
        # an operation of the manifest: one request, its id only
        assert result["trusted"]["data"]["models"]
        assert result["trustedRequests"] == [{"method": "POST", "query": False, "hash": True}]
        # one the manifest lacks: refused, and the link does not retry with the text
        assert result["adHoc"]["codes"] == ["PERSISTED_QUERY_NOT_TRUSTED"]
        assert len(result["adHocRequests"]) == 1
        # curl: ad-hoc text refused, a trusted id by documentId over GET runs
        status, body = post(server, {"query": MODELS})
        assert (status, code(body)) == (400, "PERSISTED_QUERY_NOT_TRUSTED")
        assert body["errors"][0]["message"].startswith("Only trusted documents are accepted")
        first_id = json.loads(manifest.read_text())["operations"][0]["id"]
        status, body = get(server, documentId=f"sha256:{first_id}")
        assert status == 200 and "models" in body["data"]
        # GraphiQL is off in this mode
        page = httpx.get(f"{server.url}/graphql", headers={"accept": "text/html"}, timeout=10)
        assert "graphiql" not in page.text.lower()


def test_graphql_codegens_persisted_documents_pass_the_check_and_load(
    manifest: Path, node_tools: NodeTools, tmp_path: Path
) -> None:
    # given graphql-codegen's client preset run over the same operations, with persistedDocuments on
    result = node_json(node_tools, "-", "codegen", str(REPO / "schema.graphql"), str(manifest.parent), str(tmp_path))
    documents = tmp_path / "persisted-documents.json"
    assert len(result["documents"]) == len(OPERATIONS)
    # then the check passes and the server's loader takes every document under its id
    checked = subprocess.run(
        [GENHUB, "documents", "check", str(documents)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout
    trusted = load_trusted_documents(documents)
    for key, body in result["documents"].items():
        found = trusted.get(key.removeprefix("sha256:"))
        assert found is not None and found.body == body


def test_a_server_refuses_to_start_with_a_bad_manifest(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({document_hash(MODELS): LOGOUT}))
    refused = pytest.raises(RuntimeError, match="TRUSTED_DOCUMENTS_MANIFEST cannot be used")
    with refused, serve({"TRUSTED_DOCUMENTS_MANIFEST": str(bad)}, tmp_path, timeout=30):
        pass
    checked = subprocess.run([GENHUB, "documents", "check", str(bad)], capture_output=True, text=True, check=False)
    assert checked.returncode == 1 and "does not match" in checked.stdout
