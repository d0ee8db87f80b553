"""`genhub serve` on the embedded defaults, tried as a new user would: over real HTTP."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

from tests.fixtures.server import serve

pytestmark = pytest.mark.slow

LOGIN = """mutation { login(input: {email: "demo@genhub.local", password: "demo-password-123"}) {
  __typename ... on AuthPayload { accessToken } } }"""
MODELS = "{ models { id slug costCredits } credits { balance reserved available } }"
GENERATE = """mutation ($m: ID!) { generate(input: {modelId: $m, prompt: "a red fox", idempotencyKey: "e2e-1"}) {
  __typename ... on GenerateSuccess { generation { id status reservedCredits } } } }"""
STATUS = "query ($id: ID!) { generation(id: $id) { status progress chargedCredits outputs { url contentType } } }"


def gql(
    url: str, query: str, variables: dict[str, object] | None = None, token: str | None = None
) -> dict[str, object]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = httpx.post(f"{url}/graphql", json={"query": query, "variables": variables or {}}, headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    assert "errors" not in body, body
    return body["data"]  # type: ignore[return-value]


def test_first_start_seeds_prints_a_token_and_runs_a_generation(tmp_path: Path) -> None:
    env = {"SIMULATED_STEPS": "2", "SIMULATED_STEP_SECONDS": "0.2", "POLL_INTERVAL_SECONDS": "1"}
    with serve(env, tmp_path) as server:
        # the banner names GraphiQL, the demo account and a ready token
        output = server.output()
        assert "/graphql" in output and "demo@genhub.local" in output
        match = re.search(r"Bearer ([A-Za-z0-9_\-.]+)", output)
        assert match, output
        printed_token = match.group(1)
        assert gql(server.url, "{ me { email } }", token=printed_token) == {"me": {"email": "demo@genhub.local"}}
        assert httpx.get(f"{server.url}/ready").status_code == 200
        assert (tmp_path / "data" / "genhub.db").exists()

        # a new user's path: log in, pick a model, start a generation, see it finish
        token = gql(server.url, LOGIN)["login"]["accessToken"]  # type: ignore[index]
        catalogue = gql(server.url, MODELS, token=token)
        model = catalogue["models"][0]  # type: ignore[index]
        started = gql(server.url, GENERATE, {"m": model["id"]}, token=token)["generate"]  # type: ignore[index]
        assert started["__typename"] == "GenerateSuccess"
        generation_id = started["generation"]["id"]
        deadline = time.monotonic() + 30
        while True:
            state = gql(server.url, STATUS, {"id": generation_id}, token=token)["generation"]
            if state["status"] in ("SUCCEEDED", "FAILED", "EXPIRED") or time.monotonic() > deadline:  # type: ignore[index]
                break
            time.sleep(0.3)
        assert state["status"] == "SUCCEEDED", state  # type: ignore[index]
        assert state["chargedCredits"] == model["costCredits"]  # type: ignore[index]
        image = httpx.get(state["outputs"][0]["url"], timeout=10)  # type: ignore[index]
        assert image.status_code == 200 and image.content.startswith(b"\x89PNG")


def test_port_comes_from_the_environment(tmp_path: Path) -> None:
    with serve({"SEED_DEMO": "false"}, tmp_path) as server:
        assert server.url.rsplit(":", 1)[1] in server.output()
