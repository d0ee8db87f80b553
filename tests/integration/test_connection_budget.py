"""The connection budget against a real PostgreSQL: what the server reports, a refused start, a warning."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from infrastructure.db.connection_budget import budget_for, check_budget, read_capacity
from infrastructure.settings import Settings

pytestmark = pytest.mark.postgres

GENHUB = str(Path(sys.executable).with_name("genhub"))


def settings_for(postgres_url: str, tmp_path: Path, **values: object) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path, database_url=postgres_url, **values)  # type: ignore[arg-type]


async def test_capacity_is_what_the_server_reports(postgres_url: str, postgres_dsn: str) -> None:
    # given the server's own settings, read over a connection of ours
    conn = await asyncpg.connect(postgres_dsn)
    try:
        max_connections = int(await conn.fetchval("SHOW max_connections"))
        reserved = int(await conn.fetchval("SHOW superuser_reserved_connections"))
        # when the budget check reads the capacity while our connection is open
        capacity = await read_capacity(postgres_url)
    finally:
        await conn.close()
    # then it has the same limits, and counts our session among the ones in use
    assert (capacity.max_connections, capacity.reserved) == (max_connections, reserved)
    assert capacity.usable == max_connections - reserved
    assert capacity.in_use >= 1


async def test_a_process_budget_over_the_server_limit_is_refused(
    postgres_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    capacity = await read_capacity(postgres_url)
    settings = settings_for(postgres_url, tmp_path, database_pool_size=capacity.usable)
    with caplog.at_level(logging.INFO, logger="genhub.db.budget"):
        assert not await check_budget(settings, budget_for(settings, "worker"))
    (started, refused) = [r for r in caplog.records if r.levelno in (logging.INFO, logging.ERROR)]
    assert started.connection_budget == capacity.usable + 10  # type: ignore[attr-defined]
    assert started.max_connections == capacity.max_connections  # type: ignore[attr-defined]
    assert "DATABASE_POOL_SIZE" in refused.getMessage()


async def test_a_deployment_over_the_limit_warns_but_starts(
    postgres_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    capacity = await read_capacity(postgres_url)
    settings = settings_for(postgres_url, tmp_path, database_processes=capacity.usable // 20 + 1)
    with caplog.at_level(logging.INFO, logger="genhub.db.budget"):
        assert await check_budget(settings, budget_for(settings, "serve"))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("DATABASE_PROCESSES" in w and str(capacity.usable) in w for w in warnings)


async def test_an_unreachable_server_is_a_warning_not_a_refusal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # given a port nothing listens on
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
        settings = settings_for(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/none", tmp_path)
        with caplog.at_level(logging.INFO, logger="genhub.db.budget"):
            assert await check_budget(settings, budget_for(settings, "serve"))
    assert any("could not be read" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("command", "processes"), [(["serve", "--port", "1"], 1), (["worker", "--workers", "2"], 2)])
def test_genhub_refuses_to_start_with_a_budget_the_server_cannot_hold(
    postgres_url: str, tmp_path: Path, command: list[str], processes: int
) -> None:
    # given pools that alone exceed any server's max_connections here
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "STORAGE_"))}
    env.update(
        {
            "DATABASE_URL": postgres_url,
            "DATABASE_POOL_SIZE": "100000",
            "LOG_FORMAT": "json",
            "DATA_DIR": str(tmp_path / "data"),
            "REDIS_URL": "redis://127.0.0.1:1/0",  # never reached: the check comes first
        }
    )
    # when the command starts, then it exits at once with the reason, in JSON lines
    result = subprocess.run([GENHUB, *command], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    (refusal,) = [line for line in lines if line["level"] == "error"]
    assert refusal["logger"] == "genhub.db.budget"
    assert refusal["connection_budget"] == (100_000 + 5 + 5) * processes
    assert "DATABASE_POOL_SIZE" in refusal["msg"]
