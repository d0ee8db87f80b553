"""docs/clients.md works as written: its Python, shell and marked JavaScript examples run against `genhub serve`.

Each block marked `<!-- test: python|sh|js [expect="..."] [requires="tool"] -->` runs in a
subprocess, in document order, with the documented URL (http://127.0.0.1:8000) and token
placeholder (YOUR_ACCESS_TOKEN) replaced by the real server's, and `$GENHUB` / `$TOKEN`
set for the shell. A Python or shell block without a marker fails the suite. JavaScript
blocks run with the Node.js and packages of node/ (tests/fixtures/node_tools.py), beside a
copy of sdk/typescript/possible-types.json, as a reader's project would have them; the
JavaScript fragments that continue an earlier block stay unmarked.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from infrastructure.providers.png import render_png
from tests.fixtures.node_tools import NodeTools
from tests.fixtures.server import serve

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "clients.md"
POSSIBLE_TYPES = ROOT / "sdk" / "typescript" / "possible-types.json"
#: The typed Python client, importable by the examples as after `pip install ./sdk/python`.
PYTHON_SDK = ROOT / "sdk" / "python"
DOC_URL = "http://127.0.0.1:8000"
DOC_WS_URL = "ws://127.0.0.1:8000"
TOKEN_PLACEHOLDER = "YOUR_ACCESS_TOKEN"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.S | re.M)
MARKER = re.compile(r"<!-- test: (?P<kind>python|sh|js)(?P<options>[^>]*?) -->\s*$")
OPTION = re.compile(r'(\w+)="([^"]*)"')
RUNNABLE = {"python", "sh", "bash", "shell"}
SERVER_ENV = {"SIMULATED_STEPS": "2", "SIMULATED_STEP_SECONDS": "0.2", "POLL_INTERVAL_SECONDS": "1"}
LOGIN = """mutation { login(input: {email: "demo@genhub.local", password: "demo-password-123"}) {
  ... on AuthPayload { accessToken } } }"""


@dataclass(frozen=True)
class Example:
    kind: str  # python | sh | js
    code: str
    line: int
    expect: str | None
    requires: str | None

    @property
    def id(self) -> str:
        return f"{self.kind}-line{self.line}"


@dataclass(frozen=True)
class Unmarked:
    lang: str
    line: int


def parse(text: str) -> tuple[list[Example], list[Unmarked]]:
    examples: list[Example] = []
    unmarked: list[Unmarked] = []
    for fence in FENCE.finditer(text):
        lang, code = fence.group(1), fence.group(2)
        line = text.count("\n", 0, fence.start()) + 1
        before = text[: fence.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = MARKER.search(before)
        if marker is None:
            if lang in RUNNABLE:
                unmarked.append(Unmarked(lang, line))
            continue
        options = dict(OPTION.findall(marker.group("options")))
        examples.append(Example(marker.group("kind"), code, line, options.get("expect"), options.get("requires")))
    return examples, unmarked


EXAMPLES, UNMARKED = parse(DOC.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class DocsServer:
    url: str
    token: str
    workdir: Path

    def substitute(self, code: str) -> str:
        ws_url = "ws" + self.url.removeprefix("http")
        return code.replace(DOC_WS_URL, ws_url).replace(DOC_URL, self.url).replace(TOKEN_PLACEHOLDER, self.token)


@pytest.fixture(scope="module")
def docs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DocsServer]:
    workdir = tmp_path_factory.mktemp("client-docs")
    with serve(SERVER_ENV, workdir) as server:
        response = httpx.post(f"{server.url}/graphql", json={"query": LOGIN}, timeout=10)
        token = response.json()["data"]["login"]["accessToken"]
        # the file the upload examples send
        (workdir / "photo.png").write_bytes(render_png("photo", width=32, height=32))
        yield DocsServer(server.url, token, workdir)


def js_project(docs_server: DocsServer, node_tools: NodeTools) -> Path:
    """A directory that has node/'s packages and the shipped possibleTypes, as a reader's project would."""
    project = docs_server.workdir / "js"
    if not project.exists():
        project.mkdir()
        (project / "node_modules").symlink_to(node_tools.root / "node_modules", target_is_directory=True)
        (project / POSSIBLE_TYPES.name).write_bytes(POSSIBLE_TYPES.read_bytes())
    return project


def require_tool(name: str) -> None:
    if shutil.which(name) is None:
        reason = f"this example needs `{name}` on PATH (apt-get install {name})"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " (required under CI)")
        pytest.skip(reason)


def test_the_guide_has_python_and_curl_examples_and_tests_every_one() -> None:
    kinds = [e.kind for e in EXAMPLES]
    assert kinds.count("python") >= 4 and kinds.count("sh") >= 5 and kinds.count("js") >= 2, kinds
    assert UNMARKED == [], f"mark these blocks of docs/clients.md with <!-- test: ... -->: {UNMARKED}"


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.id for e in EXAMPLES])
def test_example_runs_as_written(example: Example, docs_server: DocsServer, request: pytest.FixtureRequest) -> None:
    # given the block as a reader would paste it, pointed at this server
    code = docs_server.substitute(example.code)
    if example.requires:
        require_tool(example.requires)
    cwd = docs_server.workdir
    python_path = os.pathsep.join(filter(None, [str(PYTHON_SDK), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "GENHUB": docs_server.url, "TOKEN": docs_server.token, "PYTHONPATH": python_path}
    if example.kind == "sh":
        require_tool("curl")
        command = ["bash", "-euo", "pipefail", "-c", code]
    elif example.kind == "js":
        node_tools: NodeTools = request.getfixturevalue("node_tools")
        cwd = js_project(docs_server, node_tools)
        (cwd / f"example_line{example.line}.mjs").write_text(code, encoding="utf-8")
        command, env = [str(node_tools.node), f"example_line{example.line}.mjs"], node_tools.env()
    else:
        script = docs_server.workdir / f"example_line{example.line}.py"
        script.write_text(code, encoding="utf-8")
        command = [sys.executable, script.name]

    # when it runs
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False)

    # then it succeeds and prints what the guide promises
    where = f"docs/clients.md line {example.line}:\n{code}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    assert result.returncode == 0, where
    if example.expect:
        assert example.expect in result.stdout, where
    if example.kind == "sh":
        assert '"errors"' not in result.stdout, where


def test_the_apollo_example_needs_the_shipped_possible_types(docs_server: DocsServer, node_tools: NodeTools) -> None:
    # given the Apollo example with an empty possibleTypes instead of the shipped map
    (apollo,) = [e for e in EXAMPLES if e.kind == "js" and "InMemoryCache" in e.code]
    shipped = "possibleTypes: introspection.possibleTypes"
    assert shipped in apollo.code
    code = docs_server.substitute(apollo.code).replace(shipped, "possibleTypes: {}")

    project = js_project(docs_server, node_tools)
    (project / "apollo_without_possible_types.mjs").write_text(code, encoding="utf-8")

    # when it runs
    result = subprocess.run(
        [str(node_tools.node), "apollo_without_possible_types.mjs"],
        cwd=project,
        env=node_tools.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    # then Apollo drops what `... on Error` selected: the NotFound arrives without its code
    assert result.returncode == 0, result.stderr
    assert "NotFound undefined" in result.stdout, result.stdout
