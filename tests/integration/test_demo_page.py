"""The /demo routes: packaged static files, their headers, and what config.json may reveal."""

from __future__ import annotations

import pytest

from graph.demo import DEMO_DIR, MEDIA_TYPES
from tests.fixtures.app import SettingsFactory, register_user, running_app

DEMO_EMAIL = "demo@genhub.local"
DEMO_PASSWORD = "demo-password-123"


async def test_the_page_and_its_assets_are_served_from_the_package(make_settings: SettingsFactory) -> None:
    # given a development-like server
    async with running_app(make_settings()) as client:
        # when a browser opens /demo
        redirect = await client.http.get("/demo")
        page = await client.http.get("/demo/")
        assets = {name: await client.http.get(f"/demo/{name}") for name in MEDIA_TYPES}

    # then it lands on /demo/ and every asset comes back byte for byte with its media type
    assert redirect.status_code == 307 and redirect.headers["location"] == "demo/"
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
