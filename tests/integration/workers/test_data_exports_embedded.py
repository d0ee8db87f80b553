"""Data exports in embedded mode (SQLite, tasks in the API process): requested, built and downloaded
through the app's own signed /files/ route, as `make run` does it."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import time
import zipfile
from urllib.parse import urlsplit

from tests.fixtures.app import SettingsFactory, running_app
from tests.integration.workers.world import GRANT, new_world

REQUEST = "mutation { requestDataExport { ... on RequestDataExportSuccess { export { id status } } } }"
ONE = """query($id: ID!) { dataExport(id: $id) { ... on DataExport {
  status size sha256 url(expiresInSeconds: 60) { url } } } }"""


async def test_an_export_is_built_in_process_and_downloaded_from_the_app(make_settings: SettingsFactory) -> None:
    # given the app on embedded defaults and a user with a finished generation
    async with running_app(make_settings()) as client:
        world = await new_world(client.container)
        model = await world.model("sim-export")
        await world.wait_final((await world.generate(model)).id, timeout=10)
        token = client.container.tokens.issue_access(world.user.id, world.user.role).token
        # when the user requests an export five times at once
        bodies = await asyncio.gather(*(client.execute(REQUEST, token=token) for _ in range(5)))
        ids = {b["data"]["requestDataExport"]["export"]["id"] for b in bodies}
        assert len(ids) == 1
        (export_id,) = ids
        # then the in-process worker builds it
        deadline = time.monotonic() + 20
        while (found := (await client.execute(ONE, {"id": export_id}, token=token))["data"]["dataExport"])[
            "status"
        ] != "READY":
            assert found["status"] in ("PENDING", "BUILDING") and time.monotonic() < deadline, found
            await asyncio.sleep(0.1)
        # and its signed URL downloads the archive from the app itself
        url = urlsplit(found["url"]["url"])
        response = await client.http.get(f"{url.path}?{url.query}")
        assert response.status_code == 200, response.text
        assert response.headers["content-disposition"].startswith("attachment")
        data = response.content
        assert (len(data), hashlib.sha256(data).hexdigest()) == (found["size"], found["sha256"])
        archive = zipfile.ZipFile(io.BytesIO(data))
        account = json.loads(archive.read("account.json"))
        ledger = json.loads(archive.read("ledger.json"))
        (generation,) = json.loads(archive.read("generations.json"))
        balance, _ = await world.balance()
        assert account["balance"] == balance.balance < GRANT
        assert sum(e["amount"] for e in ledger if e["kind"] in ("grant", "adjust", "capture")) == balance.balance
        (output,) = generation["outputs"]
        assert hashlib.sha256(archive.read(output["file"])).hexdigest() == output["sha256"]
