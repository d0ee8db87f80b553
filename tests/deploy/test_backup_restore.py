"""scripts/backup.sh and scripts/restore.sh.

Without a database: with PG_DUMP / PG_RESTORE pointing at fakes, the URL
conversion, file naming, retention and the confirmation prompt.
With PostgreSQL (127.0.0.1:5432, or TEST_POSTGRES_ADMIN_URL): a real
pg_dump -Fc of one database restored over another with pg_restore --clean;
skipped without PostgreSQL or its client tools, unless CI=true.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BACKUP = REPO / "scripts" / "backup.sh"
RESTORE = REPO / "scripts" / "restore.sh"
IN_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

FAKE_TOOL = """#!/bin/sh
# Records its arguments and its stdin size; writes a fake dump to stdout.
printf '%s\\n' "$*" >> "$FAKE_LOG"
if [ -n "${FAKE_STDIN:-}" ]; then cat > "$FAKE_STDIN"; fi
printf 'PGDMP-fake'
exit "${FAKE_EXIT:-0}"
"""


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: required)")
    pytest.skip(reason)


@pytest.fixture
def fake_tool(tmp_path: Path) -> Path:
    path = tmp_path / "fake-pg-tool"
    path.write_text(FAKE_TOOL)
    path.chmod(0o755)
    return path


def _run(script: Path, *args: str, env: dict[str, str], cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env}
    return subprocess.run(
        ["sh", str(script), *args], env=full_env, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql+asyncpg://u:p@db:5432/genhub", "postgresql://u:p@db:5432/genhub"),
        ("postgres://u:p@db/genhub?sslmode=require", "postgresql://u:p@db/genhub?sslmode=require"),
        ("postgresql+asyncpg://u:p@db/genhub?ssl=require", "postgresql://u:p@db/genhub?sslmode=require"),
        (
            "postgresql://u:p@db/genhub?application_name=x&ssl=disable",
            "postgresql://u:p@db/genhub?application_name=x&sslmode=disable",
        ),
    ],
)
def test_backup_hands_pg_dump_a_libpq_url_and_writes_a_timestamped_dump(
    tmp_path: Path, fake_tool: Path, given: str, expected: str
) -> None:
    log = tmp_path / "calls.log"
    result = _run(
        BACKUP,
        env={"DATABASE_URL": given, "PG_DUMP": str(fake_tool), "FAKE_LOG": str(log), "BACKUP_DIR": "out"},
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    path = Path(result.stdout.strip())
    assert re.fullmatch(r"out/genhub-\d{8}T\d{6}Z\.dump", path.as_posix()), path
    assert (tmp_path / path).read_text() == "PGDMP-fake"
    assert not list((tmp_path / "out").glob("*.partial"))
    (call,) = log.read_text().splitlines()
    assert "--format=custom" in call and "--no-owner" in call
    assert call.endswith(f"--dbname={expected}")


def test_backup_takes_the_url_as_an_argument_too(tmp_path: Path, fake_tool: Path) -> None:
    log = tmp_path / "calls.log"
    result = _run(
        BACKUP,
        "postgres://u@db/genhub",
        env={"PG_DUMP": str(fake_tool), "FAKE_LOG": str(log), "BACKUP_DIR": "out"},
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert log.read_text().strip().endswith("--dbname=postgresql://u@db/genhub")


def test_a_failed_dump_leaves_no_file_that_looks_like_a_backup(tmp_path: Path, fake_tool: Path) -> None:
    result = _run(
        BACKUP,
        env={
            "DATABASE_URL": "postgresql://u@db/genhub",
            "PG_DUMP": str(fake_tool),
            "FAKE_LOG": str(tmp_path / "calls.log"),
            "FAKE_EXIT": "1",
            "BACKUP_DIR": "out",
        },
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert list((tmp_path / "out").iterdir()) == []


def test_old_dumps_are_pruned_and_recent_ones_kept(tmp_path: Path, fake_tool: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    old = out / "genhub-20200101T000000Z.dump"
    recent = out / "genhub-20990101T000000Z.dump"
    unrelated = out / "notes.txt"
    for path in (old, recent, unrelated):
        path.write_text("x")
    month_ago = time.time() - 30 * 86400
    os.utime(old, (month_ago, month_ago))
    os.utime(unrelated, (month_ago, month_ago))
    result = _run(
        BACKUP,
        env={
            "DATABASE_URL": "postgresql://u@db/genhub",
            "PG_DUMP": str(fake_tool),
            "FAKE_LOG": str(tmp_path / "calls.log"),
            "BACKUP_DIR": str(out),
            "BACKUP_KEEP_DAYS": "14",
        },
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert not old.exists()
    assert recent.exists() and unrelated.exists()


def test_backup_refuses_a_url_that_is_not_postgresql(tmp_path: Path, fake_tool: Path) -> None:
    result = _run(
        BACKUP,
        env={"DATABASE_URL": "sqlite+aiosqlite:///data/genhub.db", "PG_DUMP": str(fake_tool)},
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "not a PostgreSQL URL" in result.stderr


def test_restore_asks_before_overwriting(tmp_path: Path, fake_tool: Path) -> None:
    dump = tmp_path / "genhub.dump"
    dump.write_text("PGDMP")
    log = tmp_path / "calls.log"
    env = {"PG_RESTORE": str(fake_tool), "FAKE_LOG": str(log)}
    refused = _run(RESTORE, str(dump), "postgresql://u:hunter2@db/genhub", env=env, cwd=tmp_path, stdin="no\n")
    assert refused.returncode == 1
    assert not log.exists()
    assert "hunter2" not in refused.stderr and "u:***@db" in refused.stderr

    confirmed = _run(
        RESTORE,
        str(dump),
        "postgresql+asyncpg://u:hunter2@db/genhub",
        env={**env, "FAKE_STDIN": str(tmp_path / "stdin")},
        cwd=tmp_path,
        stdin="yes\n",
    )
    assert confirmed.returncode == 0, confirmed.stderr
    (call,) = log.read_text().splitlines()
    for option in ("--clean", "--if-exists", "--single-transaction", "--exit-on-error"):
        assert option in call
    assert call.endswith("--dbname=postgresql://u:hunter2@db/genhub")
    # The dump reaches pg_restore on stdin (so PG_RESTORE may be `docker compose exec -T ...`).
    assert (tmp_path / "stdin").read_text() == "PGDMP"


def test_restore_yes_flag_skips_the_question(tmp_path: Path, fake_tool: Path) -> None:
    dump = tmp_path / "genhub.dump"
    dump.write_text("PGDMP")
    result = _run(
        RESTORE,
        "--yes",
        str(dump),
        env={
            "PG_RESTORE": str(fake_tool),
            "FAKE_LOG": str(tmp_path / "calls.log"),
            "DATABASE_URL": "postgres://u@db/x",
        },
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr


def test_restore_of_a_missing_file_fails_clearly(tmp_path: Path, fake_tool: Path) -> None:
    result = _run(
        RESTORE, "--yes", "nope.dump", "postgresql://u@db/x", env={"PG_RESTORE": str(fake_tool)}, cwd=tmp_path
    )
    assert result.returncode == 2
    assert "no such file" in result.stderr


# --- against PostgreSQL -----------------------------------------------------------


async def _admin(sql: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def _execute(url: str, sql: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(url, timeout=5)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def _fetch(url: str, sql: str) -> list[tuple[object, ...]]:
    import asyncpg

    connection = await asyncpg.connect(url, timeout=5)
    try:
        return [tuple(row) for row in await connection.fetch(sql)]
    finally:
        await connection.close()


@pytest.fixture
def two_databases() -> Iterator[tuple[str, str]]:
    names = [f"genhub_backup_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    try:
        for name in names:
            asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except (TimeoutError, OSError) as exc:
        _unavailable(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {exc}")
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{names[0]}", f"{base}/{names[1]}"
    finally:
        for name in names:
            asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.mark.postgres
def test_backup_then_restore_round_trips_a_database(tmp_path: Path, two_databases: tuple[str, str]) -> None:
    if not (shutil.which("pg_dump") and shutil.which("pg_restore")):
        _unavailable("pg_dump/pg_restore not installed (Debian: postgresql-client)")
    source, target = two_databases
    asyncio.run(
        _execute(
            source,
            "CREATE TABLE credit_ledger (id int PRIMARY KEY, amount int NOT NULL);"
            "INSERT INTO credit_ledger VALUES (1, 100), (2, -30);",
        )
    )
    # The target has older, different data in the same table: --clean replaces it.
    asyncio.run(
        _execute(
            target,
            "CREATE TABLE credit_ledger (id int PRIMARY KEY, amount int); INSERT INTO credit_ledger VALUES (9, 1);",
        )
    )

    backup = _run(
        BACKUP,
        env={"DATABASE_URL": source.replace("postgresql://", "postgresql+asyncpg://", 1), "BACKUP_DIR": "b"},
        cwd=tmp_path,
    )
    assert backup.returncode == 0, backup.stderr
    dump = tmp_path / backup.stdout.strip()
    assert dump.read_bytes().startswith(b"PGDMP"), "custom-format archive"

    restore = _run(RESTORE, "--yes", str(dump), target, env={}, cwd=tmp_path)
    assert restore.returncode == 0, restore.stderr
    rows = asyncio.run(_fetch(target, "SELECT id, amount FROM credit_ledger ORDER BY id"))
    assert rows == [(1, 100), (2, -30)]
