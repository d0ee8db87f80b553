"""LOG_FORMAT=json: every line that migrate, serve, a worker and the scheduler write is one JSON object.

Real processes on the test PostgreSQL and Redis: a generation runs through the worker, a
task fails with a traceback (its generation id written to look like a second record), the
API answers a request with a client's request id. Then each process's whole output, its
shutdown included, is read back line by line.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from taskiq.kicker import AsyncKicker

from domain.generations import GenerationStatus
from domain.use_cases.generations import SUBMIT_TASK
from infrastructure.task_log_context import MAX_FIELD_CHARS
from tests.fixtures.server import serve
from tests.fixtures.waiting import eventually
from tests.integration.workers.conftest import ROOT, worker_processes

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

CORE = {"ts", "level", "logger", "msg"}
# Not a UUID, so the submit task fails; its newline and braces try to start a record of their own.
HOSTILE_TAIL = '\n{"ts": "2026-01-01T00:00:00", "level": "info", "logger": "forged", "msg": "forged"}'
REQUEST_ID = "json-logs-request-1"


def records(text: str, where: str) -> list[dict[str, Any]]:
    """Every non-empty line of `text` as a JSON object with the core keys (fails naming the line)."""
    found: list[dict[str, Any]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise AssertionError(f"{where}: not a JSON line: {line!r}") from None
        assert isinstance(record, dict) and set(record) >= CORE, f"{where}: {line!r}"
        assert record["logger"] != "forged", f"{where}: a forged record: {line!r}"
        found.append(record)
    return found


def budget_line(lines: list[dict[str, Any]], role: str) -> dict[str, Any]:
    (line,) = [r for r in lines if r["logger"] == "genhub.db.budget" and r["level"] == "info"]
    assert line["role"] == role
    return line


async def test_every_process_writes_json_lines_with_the_ids(
    worker_env: dict[str, str], world_in: Any, tmp_path: Path
) -> None:
    env = {**worker_env, "LOG_FORMAT": "json"}
    # given a migration (the database is at head already: alembic still reports)
    migrate = subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", "migrate"], cwd=ROOT, env=env, capture_output=True, timeout=60
    )
    assert migrate.returncode == 0, migrate.stderr
    with worker_processes(env, tmp_path / "logs") as procs, serve(env, tmp_path) as server:
        async with world_in(env) as world:
            # when a generation runs through the worker
            model = await world.model("json-logs")
            started = await world.generate(model)
            assert (await world.wait_final(started.id)).status is GenerationStatus.SUCCEEDED, procs.logs()
            # and a task fails with a traceback
            hostile = f"{started.id}{HOSTILE_TAIL}"
            kicker = AsyncKicker(task_name=SUBMIT_TASK, broker=world.container.broker, labels={})
            failed = await kicker.kiq(generation_id=hostile)
            worker_log = tmp_path / "logs" / "worker.log"
            await eventually(lambda: failed.task_id in worker_log.read_text(), what="the failure logged", timeout=20)
        # and the API serves a request that names its id
        answer = httpx.post(
            f"{server.url}/graphql", json={"query": "{ __typename }"}, headers={"X-Request-ID": REQUEST_ID}
        )
        assert answer.status_code == 200
    # then every line of every process is a JSON object (the shutdowns included)
    migrate_lines = records(migrate.stdout.decode() + migrate.stderr.decode(), "migrate")
    worker_lines = records(worker_log.read_text(), "worker")
    scheduler_lines = records((tmp_path / "logs" / "scheduler.log").read_text(), "scheduler")
    serve_lines = records(server.output(), "serve")
    # and each process logged its connection budget
    assert budget_line(migrate_lines, "migrate")["connection_budget"] == 1
    assert budget_line(worker_lines, "worker")["connection_budget"] > 0
    assert budget_line(scheduler_lines, "scheduler")["connection_budget"] == 0
    assert budget_line(serve_lines, "serve")["max_connections"] > 0
    assert any(r["logger"].startswith("alembic") for r in migrate_lines)
    # and the failed task's traceback is one field of one line, with the task's ids
    (failure,) = [r for r in worker_lines if r.get("task_id") == failed.task_id and "exc" in r]
    assert failure["task_name"] == SUBMIT_TASK
    assert failure["generation_id"] == hostile[:MAX_FIELD_CHARS]  # a queue message's value, bounded
    assert failure["exc_type"] == "ValueError" and "Traceback (most recent call last)" in failure["exc"]
    # and the request's lines carry its id
    assert {r["logger"] for r in serve_lines if r.get("request_id") == REQUEST_ID} >= {
        "uvicorn.access",
        "genhub.graphql.operation",
    }
