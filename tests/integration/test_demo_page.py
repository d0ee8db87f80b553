"""The /demo routes: packaged static files, their headers, what config.json may reveal, and
the page's own GraphQL operations against the schema and a running app."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from typing import Any

import pytest
from graphql import build_schema, parse, validate

from graph.demo import DEMO_DIR, MEDIA_TYPES
from graph.schema import export_sdl
from tests.fixtures.app import (
    GraphQLClient,
    SettingsFactory,
    operator_grant,
    operator_model,
    register_user,
    running_app,
)

DEMO_EMAIL = "demo@genhub.local"
DEMO_PASSWORD = "demo-password-123"


async def test_the_page_and_its_assets_are_served_from_the_package(make_settings: SettingsFactory) -> None:
    # given a development-like server
    async with running_app(make_settings()) as client:
        # when a browser opens /demo
        redirect = await client.http.get("/demo")
        forced = await client.http.get("/demo?transport=sse")
        page = await client.http.get("/demo/")
        assets = {name: await client.http.get(f"/demo/{name}") for name in MEDIA_TYPES}

    # then it lands on /demo/ and every asset comes back byte for byte with its media type
    assert redirect.status_code == 307 and redirect.headers["location"] == "demo/"
    assert forced.headers["location"] == "demo/?transport=sse", "the transport choice survives the redirect"
    assert page.status_code == 200 and "genhub demo" in page.text
    for name, response in assets.items():
        assert response.status_code == 200, name
        assert response.headers["content-type"] == MEDIA_TYPES[name]
        assert response.content == (DEMO_DIR / name).read_bytes()
    # and the page runs only our own script: no inline code, no CDN
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "unsafe-inline" not in policy and "connect-src 'self'" in policy


@pytest.mark.parametrize("name", ["../app.py", "demo.py", "missing.js", "%2e%2e%2fdemo.py", "app.js.map"])
async def test_only_the_listed_files_are_served(make_settings: SettingsFactory, name: str) -> None:
    async with running_app(make_settings()) as client:
        response = await client.http.get(f"/demo/{name}")
    assert response.status_code == 404


async def test_config_reveals_the_demo_account_only_when_this_server_seeds_it(make_settings: SettingsFactory) -> None:
    # given a server that seeds the demo account, and the account exists
    async with running_app(make_settings(seed_demo=True, demo_email=DEMO_EMAIL, demo_password=DEMO_PASSWORD)) as client:
        before = (await client.http.get("/demo/config.json")).json()
        await register_user(client, DEMO_EMAIL, DEMO_PASSWORD)
        seeded = (await client.http.get("/demo/config.json")).json()

    # then config.json names it (with the password the server printed) once it exists
    assert before == {"graphqlPath": "/graphql", "demoAccount": None}
    assert seeded == {"graphqlPath": "/graphql", "demoAccount": {"email": DEMO_EMAIL, "password": DEMO_PASSWORD}}


async def test_config_never_reveals_an_account_of_a_server_that_does_not_seed(make_settings: SettingsFactory) -> None:
    # given an account with the demo e-mail on a server that does not seed one
    async with running_app(make_settings(seed_demo=False, demo_email=DEMO_EMAIL)) as client:
        await register_user(client, DEMO_EMAIL, DEMO_PASSWORD)
        config = await client.http.get("/demo/config.json")

    # then neither its e-mail nor any password is in the page's config
    assert config.json() == {"graphqlPath": "/graphql", "demoAccount": None}
    assert DEMO_PASSWORD not in config.text


async def test_the_demo_is_off_with_graphiql(make_settings: SettingsFactory) -> None:
    # given a server with the developer tools turned off (the production default)
    async with running_app(make_settings(graphiql=False)) as client:
        responses = [await client.http.get(path) for path in ("/demo", "/demo/", "/demo/app.js", "/demo/config.json")]
    # then the demo is not there
    assert [r.status_code for r in responses] == [404, 404, 404, 404]


# ---------------------------------------------------------------- the page's operations

#: What app.js must send: renaming or dropping one of these is a change to the page's flows.
PAGE_OPERATIONS = {"LOGIN", "REGISTER", "REFRESH", "START", "CREDITS", "HISTORY", "READ", "UPLOAD", "GENERATE"}
PAGE_OPERATIONS |= {"CANCEL", "EVENTS", "WATCH_CREDITS", "REQUEST_RESET", "RESET_PASSWORD", "LOGOUT"}
PAGE_SIZE = 24
THUMBNAIL_MAX_SIDE = 512


def page_documents() -> dict[str, str]:
    """app.js's GraphQL documents by constant name, with their `${FRAGMENT}` parts filled in."""
    source = (DEMO_DIR / "app.js").read_text(encoding="utf-8")
    constants = dict(re.findall(r"^const ([A-Z_]+) = `(.*?)`;$", source, flags=re.MULTILINE | re.DOTALL))

    def expand(text: str) -> str:
        return re.sub(r"\$\{([A-Z_]+)\}", lambda m: expand(constants[m.group(1)]), text)

    return {
        name: expand(text) for name, text in constants.items() if re.match(r"\s*(query|mutation|subscription)\b", text)
    }


def test_every_operation_of_the_page_is_valid_against_the_schema() -> None:
    # given the documents the page sends and the schema the server exports
    documents = page_documents()
    schema = build_schema(export_sdl())
    assert set(documents) == PAGE_OPERATIONS
    # then each one validates: no field the server lacks, no argument of the wrong type
    problems = {name: [e.message for e in validate(schema, parse(text))] for name, text in documents.items()}
    assert {name: errors for name, errors in problems.items() if errors} == {}


def test_the_page_builds_its_dom_from_text_only() -> None:
    # prompts are user input: the page never parses data as markup, and runs no inline code
    script = (DEMO_DIR / "app.js").read_text(encoding="utf-8")
    page = (DEMO_DIR / "index.html").read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script, sink
    assert re.findall(r"<script(?![^>]*\bsrc=)", page) == []
    assert re.findall(r"\son[a-z]+=", page) == [] and "style=" not in page


async def start_generations(me: GraphQLClient, model_id: str, prompts: list[str]) -> list[dict[str, Any]]:
    generate = page_documents()["GENERATE"]
    started = []
    for prompt in prompts:
        variables = {
            "input": {"modelId": model_id, "prompt": prompt, "params": {}, "idempotencyKey": str(uuid.uuid4())}
        }
        result = (await me.execute(generate, variables))["data"]["generate"]
        assert result["__typename"] == "GenerateSuccess", result
        started.append(result["generation"])
    return started


async def test_the_history_query_pages_newest_first_with_the_page_size(make_settings: SettingsFactory) -> None:
    documents = page_documents()
    async with running_app(make_settings()) as client:
        # given a viewer with one generation more than a page holds
        user = await register_user(client, f"grid-{uuid.uuid4().hex[:8]}@example.com")
        me = client.as_user(user["accessToken"])
        model_id = await operator_model(client, cost=1)
        await operator_grant(client, user["user"]["id"], 100)
        started = await start_generations(me, model_id, [f"tile {n}" for n in range(PAGE_SIZE + 1)])

        # when the page reads its first page and then the next one from the end cursor
        first = (await me.execute(documents["HISTORY"], {"first": PAGE_SIZE}))["data"]["generations"]
        after = first["pageInfo"]["endCursor"]
        rest = (await me.execute(documents["HISTORY"], {"first": PAGE_SIZE, "after": after}))["data"]["generations"]

    # then the first page is the newest 24, newest first, and the second holds the one left
    newest_first = [g["id"] for g in reversed(started)]
    assert [e["node"]["id"] for e in first["edges"]] == newest_first[:PAGE_SIZE]
    assert first["pageInfo"]["hasNextPage"] is True
    assert [e["node"]["id"] for e in rest["edges"]] == newest_first[PAGE_SIZE:]
    assert rest["pageInfo"]["hasNextPage"] is False
    # and a started generation already has what a tile shows
    assert started[0]["status"] == "QUEUED" and started[0]["outputs"] == [] and started[0]["model"]["id"] == model_id


async def test_a_finished_tile_reads_its_thumbnail_in_the_page_query(make_settings: SettingsFactory) -> None:
    documents = page_documents()
    async with running_app(make_settings()) as client:
        # given a viewer whose generation ran to the end (the app's embedded worker runs it)
        user = await register_user(client, f"thumb-{uuid.uuid4().hex[:8]}@example.com")
        me = client.as_user(user["accessToken"])
        model_id = await operator_model(client, cost=1, capabilities={"params": {}, "deadlineSeconds": 300})
        await operator_grant(client, user["user"]["id"], 10)
        (generation,) = await start_generations(me, model_id, ["a harbour at night"])

        # when the page reads it until the output and its thumbnail are settled
        deadline = time.monotonic() + 30
        while True:
            tile = (await me.execute(documents["READ"], {"id": generation["id"]}))["data"]["generation"]
            outputs = tile["outputs"]
            if tile["status"] == "SUCCEEDED" and outputs and outputs[0]["thumbnailStatus"] != "PENDING":
                break
            assert tile["status"] not in {"FAILED", "CANCELED", "EXPIRED"}, tile
            assert time.monotonic() < deadline, tile
            await asyncio.sleep(0.2)
        history = (await me.execute(documents["HISTORY"], {"first": PAGE_SIZE}))["data"]["generations"]
        thumbnail = outputs[0]["thumbnail"]
        fetched = await client.http.get(thumbnail["url"]) if thumbnail else None

    # then the output is measured and its thumbnail is a bounded image the browser can fetch
    output = outputs[0]
    assert output["thumbnailStatus"] == "READY", output
    assert output["width"] > 0 and output["height"] > 0
    assert 0 < thumbnail["width"] <= THUMBNAIL_MAX_SIDE and 0 < thumbnail["height"] <= THUMBNAIL_MAX_SIDE
    assert fetched is not None and fetched.status_code == 200 and fetched.headers["content-type"].startswith("image/")
    # and the history query shows the same tile
    assert history["edges"][0]["node"]["outputs"][0]["thumbnail"]["id"] == thumbnail["id"]
