"""GraphiQL at /graphql in Chromium with every other host unreachable: it loads from genhub alone.

Each request the page makes to a host other than the server's is aborted and recorded, so a
CDN asset anywhere would fail the test (the page would stay on "Loading..."). The page runs
under its real Content-Security-Policy; a violation is a failure. Through GraphiQL itself: the
example operation is in the editor, `login` runs over HTTP, and with the token in the Headers
tab a `generate` runs and `generationUpdated` (over the WebSocket) streams the generation to
SUCCEEDED. Skipped without Chromium or Playwright like the demo test; required in CI.
"""

from __future__ import annotations

import contextlib
import json
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_demo_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, DEMO_EMAIL, require_browser
from tests.fixtures.server import Server, serve

pytestmark = [pytest.mark.slow, pytest.mark.browser]

SERVER_ENV = {"SIMULATED_STEPS": "2", "SIMULATED_STEP_SECONDS": "0.2", "POLL_INTERVAL_SECONDS": "1"}
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})
TIMEOUT_MS = 30_000
#: Collected before any page script runs (an init script is not subject to the page's CSP).
WATCH_CSP = (
    "window.__cspViolations = [];"
    "document.addEventListener('securitypolicyviolation', (e) =>"
    " window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));"
)
#: CodeMirror 5 keeps its editor object on its wrapper element.
SET_EDITOR = "([selector, index, text]) => document.querySelectorAll(selector)[index].CodeMirror.setValue(text)"
QUERY_EDITOR = ".graphiql-query-editor .CodeMirror"
#: The Variables editor (0) and the Headers editor (1), both mounted, one shown
TOOL_EDITORS = ".graphiql-editor-tool .CodeMirror"
VARIABLES, HEADERS = 0, 1
#: GraphiQL reads the operation (its name, whether it is a subscription) from the editor a moment
#: after a change, then calls the page's onEditQuery, which puts the text in the URL (?q=): once
#: it is there, the play button runs this operation. (Every operation here has a name of its own.)
EDITED = "(query) => new URLSearchParams(window.location.search).get('q') === query"
RESPONSE = "() => document.querySelector('.graphiql-response .CodeMirror')?.CodeMirror.getValue() || ''"
RESPONSE_HAS = f"(text) => ({RESPONSE})().includes(text)"

LOGIN = """mutation SignIn($email: String!, $password: String!) {
  login(input: {email: $email, password: $password}) {
    __typename ... on AuthPayload { accessToken } ... on Error { code message }
  }
}"""
MODELS = "query Models { models(kind: IMAGE) { id } }"
GENERATE = """mutation Start {
  generate(input: {modelId: "%s", prompt: "a lighthouse seen from GraphiQL"}) {
    __typename ... on GenerateSuccess { generation { id } } ... on Error { code message }
  }
}"""
WATCH = 'subscription Watch { generationUpdated(id: "%s") { generation { status } } }'


@contextlib.contextmanager
def offline_page(server: Server, name: str) -> Iterator[tuple[Any, list[str]]]:
    """A page whose requests to any host but the server's are aborted; yields it and those URLs."""
    sync_api = require_browser()
    problems: list[str] = []
    elsewhere: list[str] = []
    ARTIFACTS.mkdir(exist_ok=True)

    def only_local(route: Any) -> None:
        if urllib.parse.urlsplit(route.request.url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.route("**/*", only_local)
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.add_init_script(WATCH_CSP)
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.on(
                "console",
                lambda message: problems.append(f"console: {message.text}") if message.type == "error" else None,
            )
            try:
                yield page, elsewhere
                assert page.evaluate("window.__cspViolations") == []
                assert problems == [], problems
            except Exception as exc:
                page.screenshot(path=str(ARTIFACTS / f"{name}-failure.png"))
                raise AssertionError(
                    f"{exc}\n\nbrowser: {problems}\nother hosts: {elsewhere}\n\nserver log:\n{server.output()[-4000:]}"
                ) from exc
        finally:
            browser.close()


def run(page: Any, query: str, expect: str) -> dict[str, Any]:
    """Put `query` in the editor, press the play button, wait for `expect` in the response pane."""
    page.evaluate(SET_EDITOR, [QUERY_EDITOR, 0, query])
    page.wait_for_function(EDITED, arg=query)
    page.click(".graphiql-execute-button")
    page.wait_for_function(RESPONSE_HAS, arg=expect)
    answer: dict[str, Any] = json.loads(page.evaluate(RESPONSE))
    return answer


def test_graphiql_runs_offline_under_its_policy(tmp_path: Path) -> None:
    with serve(SERVER_ENV, tmp_path) as server, offline_page(server, "graphiql") as (page, elsewhere):
        # (the start-up banner names both developer pages)
        assert f"demo page: {server.url}/demo" in server.output()
        assert f"GraphiQL:  {server.url}/graphql" in server.output()
        demo = httpx.get(f"{server.url}/demo/config.json").json()["demoAccount"]
        assert demo["email"] == DEMO_EMAIL

        # given GraphiQL opened from a server whose machine reaches no other host
        page.goto(f"{server.url}/graphql")
        page.wait_for_selector(QUERY_EDITOR)

        # then the editor holds genhub's example operation and the explorer plugin is there
        example = page.evaluate(f"document.querySelector('{QUERY_EDITOR}').CodeMirror.getValue()")
        assert example.startswith("# Welcome to genhub's GraphQL API.") and "mutation SignIn" in example
        page.click('[aria-label="Show GraphiQL Explorer"]')
        page.wait_for_selector(".graphiql-explorer-root")

        # when a sign-in runs from the editor (variables in the Variables tab)
        page.evaluate(SET_EDITOR, [TOOL_EDITORS, VARIABLES, json.dumps(demo)])
        signed_in = run(page, LOGIN, "accessToken")
        token = signed_in["data"]["login"]["accessToken"]

        # and, with its token in the Headers tab, a generation is started and watched live
        page.click("button:has-text('Headers')")
        page.evaluate(SET_EDITOR, [TOOL_EDITORS, HEADERS, json.dumps({"Authorization": f"Bearer {token}"})])
        model_id = run(page, MODELS, '"id"')["data"]["models"][0]["id"]
        started = run(page, GENERATE % model_id, "GenerateSuccess")
        generation_id = started["data"]["generate"]["generation"]["id"]
        run(page, WATCH % generation_id, "SUCCEEDED")

        # then nothing was asked of another host
        page.screenshot(path=str(ARTIFACTS / "graphiql.png"))
        assert elsewhere == []
