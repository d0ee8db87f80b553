"""GraphiQL's page and its assets as genhub serves them: the fixed file table, media types, cache
headers, the example operation's data block, and nothing when GraphiQL is off."""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graph.ide import ASSETS, IMMUTABLE, REVALIDATE
from tests.fixtures.app import GraphQLClient, SettingsFactory, app_settings, running_app

HOSTILE = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
HTML = {"accept": "text/html"}
CONFIG_BLOCK = re.compile(r'<script type="application/json" id="genhub-graphiql-config">(.*?)</script>', re.S)


@pytest.fixture(scope="module")
async def client(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[GraphQLClient]:
    async with running_app(app_settings(tmp_path_factory.mktemp("graphiql-assets"))) as c:
        yield c


async def test_the_page_loads_only_files_genhub_serves(client: GraphQLClient) -> None:
    # given the GraphiQL page
    page = await client.http.get("/graphql", headers=HTML)
    # then every script and stylesheet it names is one of ours, relative to the page
    urls = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert urls and all(u == "data:," or u.startswith("graphiql/") for u in urls), urls
    for url in urls[1:]:
        assert url.removeprefix("graphiql/") in ASSETS, url
    # and no script of it is inline (the only <script> without src is the JSON data block)
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", page.text) == [
        '<script type="application/json" id="genhub-graphiql-config">'
    ]


async def test_every_asset_comes_back_byte_for_byte_with_its_type_and_cache_policy(client: GraphQLClient) -> None:
    for name, asset in ASSETS.items():
        # when a browser fetches it (and a HEAD asks about it)
        response = await client.http.get(f"/graphiql/{name}")
        head = await client.http.head(f"/graphiql/{name}")
        # then it is the file, with its media type; versioned files may be kept a year
        assert response.status_code == 200 and head.status_code == 200, name
        assert response.content == asset.path.read_bytes(), name
        assert response.headers["content-type"] == asset.media_type
        assert response.headers["x-content-type-options"] == "nosniff"
        expected = IMMUTABLE if name.startswith("vendor/") else REVALIDATE
        assert response.headers["cache-control"] == expected, name
        assert head.content == b""


@pytest.mark.parametrize(
    "name",
    [
        "../ide.py",
        "..%2fide.py",
        "vendor/../../ide.py",
        "vendor/manifest.json/../../../app.py",
        "index.html",
        "vendor/",
        "",
        "vendor/graphiql-3.8.3.min.js.map",
        "/etc/passwd",
        "GENHUB-GRAPHIQL.JS",
    ],
)
async def test_names_outside_the_table_are_not_found(client: GraphQLClient, name: str) -> None:
    assert (await client.http.get(f"/graphiql/{name}")).status_code == 404


@HOSTILE
@given(name=st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=60))
async def test_any_other_name_is_not_found(client: GraphQLClient, name: str) -> None:
    # given a path of any characters, percent-encoded (slashes too), that is not in the table
    response = await client.http.get("/graphiql/" + urllib.parse.quote(name, safe=""))
    # then genhub answers 404 (or 200 for a generated name that happens to be a real asset)
    assert response.status_code == (200 if name in ASSETS else 404), name


async def test_a_hostile_demo_password_stays_data_in_the_page(make_settings: SettingsFactory) -> None:
    # given a development server seeding a demo account whose password would close the data block
    password = '</script><script>alert(1)</script><!-- & "'
    async with running_app(make_settings(seed_demo=True, demo_password=password)) as client:
        page = await client.http.get("/graphql", headers=HTML)
    # then the page holds it only inside the JSON data block, escaped, and it reads back whole
    assert "<script>alert" not in page.text
    (block,) = CONFIG_BLOCK.findall(page.text)
    assert "<" not in block and ">" not in block and "&" not in block
    example = json.loads(block)["exampleQuery"]
    assert password in example


async def test_an_unseeded_server_shows_placeholders_not_its_demo_password(make_settings: SettingsFactory) -> None:
    async with running_app(make_settings(seed_demo=False, demo_password="not-for-you-123")) as client:
        page = await client.http.get("/graphql", headers=HTML)
    assert "not-for-you-123" not in page.text and "you@example.com" in page.text


async def test_graphiql_off_serves_no_page_and_no_asset(make_settings: SettingsFactory) -> None:
    async with running_app(make_settings(graphiql=False)) as client:
        page = await client.http.get("/graphql", headers=HTML)
        assets = [await client.http.get(f"/graphiql/{name}") for name in ("genhub-graphiql.js", *list(ASSETS)[-2:])]
    assert "GraphiQL" not in page.text
    assert {r.status_code for r in assets} == {404}
