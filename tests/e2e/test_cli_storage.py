"""`genhub storage migrate` as an operator runs it (real subprocesses), on a local directory and on S3 (moto)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from domain.chunks import chunk_key, output_key
from domain.media import thumbnail_key
from infrastructure.settings import Settings
from infrastructure.storage.factory import open_storage
from tests.e2e.test_cli import GENHUB
from tests.fixtures.s3 import MOTO_ACCESS_KEY, MOTO_SECRET_KEY

pytest_plugins = ["tests.fixtures.s3"]

USER, GENERATION = uuid.uuid4(), uuid.uuid4()
OUTPUT = output_key(USER, GENERATION, 0, ".png")
OBJECTS = {
    chunk_key(USER, uuid.uuid4(), "in.png"): b"u" * 1500,
    OUTPUT: b"o" * 2500,
    thumbnail_key(OUTPUT): b"t" * 100,
}


class Operator:
    """Runs `genhub storage migrate` with the environment of a deployment, and looks into its areas."""

    def __init__(self, backend: str, cwd: Path, env: dict[str, str], per_kind: dict[str, str], look: Any) -> None:
        self.backend, self.cwd, self.env, self.per_kind, self.look = backend, cwd, env, per_kind, look

    def run(self, *args: str, per_kind: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**self.env, **(self.per_kind if per_kind else {})}
        return subprocess.run(
            [GENHUB, "storage", "migrate", *args], cwd=self.cwd, env=env, capture_output=True, text=True, timeout=60
        )

    def settings(self) -> Settings:
        return Settings(_env_file=None, **{k.lower(): v for k, v in self.env.items() if k != "PATH"})


@pytest.fixture(params=["local", "s3"])
def operator(request: pytest.FixtureRequest, tmp_path: Path, moto_server: str, s3_admin: Any) -> Operator:
    base = {"PATH": os.environ["PATH"], "DATA_DIR": str(tmp_path / "data"), "LOG_LEVEL": "WARNING"}
    if request.param == "local":
        env = {**base, "STORAGE_BACKEND": "local", "LOCAL_STORAGE_PATH": str(tmp_path / "store")}
        per_kind = {f"LOCAL_{kind}_PATH": str(tmp_path / kind.lower()) for kind in ("UPLOADS", "OUTPUTS", "THUMBNAILS")}

        def look(area: str) -> list[str]:
            root = tmp_path / ("store" if area == "default" else area)
            return sorted(
                p.relative_to(root).as_posix()
                for p in root.rglob("*")
                if p.is_file() and not p.relative_to(root).as_posix().startswith(".")
            )

    else:
        suffix = uuid.uuid4().hex[:12]
        env = {
            **base,
            "STORAGE_BACKEND": "s3",
            "S3_ENDPOINT_URL": moto_server,
            "S3_BUCKET": f"default-{suffix}",
            "S3_REGION": "us-east-1",
            "S3_ACCESS_KEY_ID": MOTO_ACCESS_KEY,
            "S3_SECRET_ACCESS_KEY": MOTO_SECRET_KEY,
            "S3_ADDRESSING_STYLE": "path",
            "S3_CREATE_BUCKET": "true",
        }
        per_kind = {f"S3_{kind}_BUCKET": f"{kind.lower()}-{suffix}" for kind in ("UPLOADS", "OUTPUTS", "THUMBNAILS")}

        def look(area: str) -> list[str]:
            bucket = env["S3_BUCKET"] if area == "default" else f"{area}-{suffix}"
            try:
                page = s3_admin.list_objects_v2(Bucket=bucket)
            except s3_admin.exceptions.NoSuchBucket:
                return []
            return sorted(o["Key"] for o in page.get("Contents", []))

    return Operator(request.param, tmp_path, env, per_kind, look)


def write_objects(settings: Settings) -> None:
    async def write() -> None:
        async with AsyncExitStack() as stack:
            storage = await open_storage(settings, stack)
            for key, body in OBJECTS.items():
                await storage.put_bytes(key, body, content_type="application/octet-stream")

    asyncio.run(write())


def kinds(look: Callable[[str], list[str]]) -> dict[str, list[str]]:
    return {area: look(area) for area in ("default", "uploads", "outputs", "thumbnails")}


def test_migrate_previews_copies_once_then_deletes_the_sources(operator: Operator) -> None:
    # given objects of every kind written under the single-area layout
    write_objects(operator.settings())
    before = kinds(operator.look)
    assert before["default"] == sorted(OBJECTS)
    # when the operator previews the move
    preview = operator.run("--dry-run", "--delete-source")
    # then every kind's object is counted with its bytes, and nothing changed (no bucket created either)
    assert preview.returncode == 0, preview.stderr
    assert "outputs: " in preview.stdout and "  would be copied 1 object(s), 2500 bytes (2.4 KiB)" in preview.stdout
    assert "  would be deleted from the source 1" in preview.stdout
    assert preview.stdout.rstrip().endswith("dry run: nothing was changed")
    assert kinds(operator.look) == before
    # when it migrates, then each kind is copied into its own area
    moved = operator.run()
    assert moved.returncode == 0, moved.stderr
    assert moved.stdout.count("  copied 1 object(s)") == 3
    after = kinds(operator.look)
    assert after["default"] == before["default"]
    assert [key for area in ("uploads", "outputs", "thumbnails") for key in after[area]] == list(OBJECTS)
    # when it migrates again, then nothing is copied
    again = operator.run()
    assert again.returncode == 0 and again.stdout.count("  copied 0 object(s), 0 bytes") == 3
    assert again.stdout.count("  already there 1") == 3
    # when it migrates with --delete-source, then only the new copies are left
    cleaned = operator.run("--delete-source")
    assert cleaned.returncode == 0 and cleaned.stdout.count("  deleted from the source 1") == 3
    assert kinds(operator.look) == {**after, "default": []}


def test_without_areas_there_is_nothing_to_migrate(operator: Operator) -> None:
    result = operator.run(per_kind=False)
    assert result.returncode == 0, result.stderr
    assert "nothing to migrate" in result.stdout


def test_a_conflict_is_named_and_fails_the_command(operator: Operator) -> None:
    # given the output in the default area and another body under its key in the outputs area
    write_objects(operator.settings())
    per_kind = Settings(
        _env_file=None,
        **{k.lower(): v for k, v in {**operator.env, **operator.per_kind}.items() if k != "PATH"},
    )

    async def write_other() -> None:
        async with AsyncExitStack() as stack:
            await (await open_storage(per_kind, stack)).put_bytes(OUTPUT, b"newer", content_type="image/png")

    asyncio.run(write_other())
    # when the operator migrates with --delete-source
    result = operator.run("--delete-source")
    # then the key is named, the command fails, and both bodies are kept
    assert result.returncode == 1
    assert f"  conflict (another size in the target, both kept): {OUTPUT}" in result.stdout
    assert OUTPUT in operator.look("default") and operator.look("outputs") == [OUTPUT]


def test_an_unusable_area_stops_the_command_before_anything_is_copied(operator: Operator) -> None:
    # given objects in the default area, and a target area that cannot be used
    write_objects(operator.settings())
    if operator.backend == "local":
        blocked = operator.cwd / "blocked"
        blocked.write_bytes(b"a file where a directory should be")
        unusable = {**operator.per_kind, "LOCAL_OUTPUTS_PATH": str(blocked)}
    else:
        unusable = {**operator.per_kind, "S3_OUTPUTS_BUCKET": f"missing-{uuid.uuid4().hex[:12]}"}
    operator.per_kind = {**unusable, **({"S3_CREATE_BUCKET": "false"} if operator.backend == "s3" else {})}
    # when the operator migrates
    result = operator.run()
    # then it says so, exits 2, and copied nothing
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout.startswith("error: ") and "run it again" in result.stdout
    assert operator.look("uploads") == [] and operator.look("thumbnails") == []
