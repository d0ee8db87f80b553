"""docker/entrypoint.sh, run outside a container.

The first tests point GENHUB_BIN at a fake `genhub` (a shell script that records
its arguments and process id) and check the dispatch: wait for the database,
migrate, then *exec* the server with host and port from the environment.

The last test runs the real entrypoint as the container would
(`sh docker/entrypoint.sh serve`, ENVIRONMENT=production) with the real
`genhub` against a fresh PostgreSQL database and the test Redis, waits for
/ready, and runs a GraphQL query over HTTP and a WebSocket handshake.
Without PostgreSQL, Redis or the `genhub` command it is skipped, unless CI=true.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
ENTRYPOINT = REPO / "docker" / "entrypoint.sh"
IN_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

FAKE_GENHUB = """#!/bin/sh
# Records "<pid> <args>" and behaves as told by FAKE_FAIL / FAKE_RUN.
printf '%s %s\\n' "$$" "$*" >> "$FAKE_LOG"
case " ${FAKE_FAIL:-} " in *" $1 "*) exit 3 ;; esac
case " ${FAKE_RUN:-} " in *" $1 "*) exec sleep 60 ;; esac
exit 0
"""


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: required)")
    pytest.skip(reason)


@dataclass
class Call:
    pid: int
    argv: str


@dataclass
class Run:
    returncode: int
    pid: int
    calls: list[Call]
    stdout: str
    stderr: str

    @property
    def commands(self) -> list[str]:
        return [call.argv for call in self.calls]


@pytest.fixture
def fake_genhub(tmp_path: Path) -> Path:
    path = tmp_path / "genhub"
    path.write_text(FAKE_GENHUB)
    path.chmod(0o755)
    return path


def _base_env(tmp_path: Path, fake: Path, **extra: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GENHUB_BIN": str(fake),
        "FAKE_LOG": str(tmp_path / "calls.log"),
    }
    env.update(extra)
    return env


def _calls(tmp_path: Path) -> list[Call]:
    log = tmp_path / "calls.log"
    if not log.exists():
        return []
    calls = []
    for line in log.read_text().splitlines():
        pid, _, argv = line.partition(" ")
        calls.append(Call(int(pid), argv))
    return calls


def run_entrypoint(tmp_path: Path, fake: Path, *args: str, **env: str) -> Run:
    (tmp_path / "calls.log").unlink(missing_ok=True)
    process = subprocess.Popen(
        ["sh", str(ENTRYPOINT), *args],
        env=_base_env(tmp_path, fake, **env),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stdout, stderr = process.communicate(timeout=30)
    return Run(process.returncode, process.pid, _calls(tmp_path), stdout, stderr)


def test_serve_waits_for_the_database_migrates_then_execs_the_server_on_port(tmp_path: Path, fake_genhub: Path) -> None:
    run = run_entrypoint(tmp_path, fake_genhub, "serve", PORT="9123")
    assert run.returncode == 0, run.stderr
    assert run.commands == ["wait-for-db --timeout 60", "migrate", "serve --host 0.0.0.0 --port 9123"]
    # exec: the server is the process the container runtime started (PID 1 there),
    # so it receives SIGTERM itself; the two steps before it were children.
    assert run.calls[-1].pid == run.pid
    assert run.calls[0].pid != run.pid and run.calls[1].pid != run.pid


def test_no_command_means_serve_with_the_default_port(tmp_path: Path, fake_genhub: Path) -> None:
    run = run_entrypoint(tmp_path, fake_genhub)
    assert run.returncode == 0, run.stderr
    assert run.commands[-1] == "serve --host 0.0.0.0 --port 8000"


def test_host_port_and_wait_timeout_come_from_the_environment(tmp_path: Path, fake_genhub: Path) -> None:
    run = run_entrypoint(tmp_path, fake_genhub, "serve", HOST="127.0.0.1", PORT="10000", DB_WAIT_TIMEOUT="5")
    assert run.commands == ["wait-for-db --timeout 5", "migrate", "serve --host 127.0.0.1 --port 10000"]


def test_options_on_the_command_line_win_over_the_environment(tmp_path: Path, fake_genhub: Path) -> None:
    run = run_entrypoint(tmp_path, fake_genhub, "serve", "--port=7000", PORT="9123")
    assert run.commands[-1] == "serve --host 0.0.0.0 --port=7000"


def test_skip_migrations(tmp_path: Path, fake_genhub: Path) -> None:
    run = run_entrypoint(tmp_path, fake_genhub, "serve", SKIP_MIGRATIONS="1")
    assert run.commands == ["wait-for-db --timeout 60", "serve --host 0.0.0.0 --port 8000"]


@pytest.mark.parametrize("role", ["worker", "scheduler"])
def test_worker_and_scheduler_do_not_migrate_by_default(tmp_path: Path, fake_genhub: Path, role: str) -> None:
    run = run_entrypoint(tmp_path, fake_genhub, role)
    assert run.returncode == 0, run.stderr
    assert run.commands == ["wait-for-db --timeout 60", role]
    assert run.calls[-1].pid == run.pid


@pytest.mark.parametrize("role", ["worker", "scheduler"])
def test_worker_and_scheduler_migrate_when_asked(tmp_path: Path, fake_genhub: Path, role: str) -> None:
    run = run_entrypoint(tmp_path, fake_genhub, role, RUN_MIGRATIONS="1")
    assert run.commands == ["wait-for-db --timeout 60", "migrate", role]
    # SKIP_MIGRATIONS wins.
    run = run_entrypoint(tmp_path, fake_genhub, role, RUN_MIGRATIONS="1", SKIP_MIGRATIONS="1")
    assert run.commands == ["wait-for-db --timeout 60", role]


def test_migrate_waits_then_passes_its_options_on(tmp_path: Path, fake_genhub: Path) -> None:
    run = run_entrypoint(tmp_path, fake_genhub, "migrate", "--downgrade", "0001", SKIP_MIGRATIONS="1")
    assert run.commands == ["wait-for-db --timeout 60", "migrate --downgrade 0001"]
    assert run.calls[-1].pid == run.pid


def test_the_genhub_prefix_is_accepted(tmp_path: Path, fake_genhub: Path) -> None:
    """Fly.io's release_command and process lines say `genhub migrate`, `genhub serve`."""
    run = run_entrypoint(tmp_path, fake_genhub, "genhub", "migrate")
    assert run.commands == ["wait-for-db --timeout 60", "migrate"]


@pytest.mark.parametrize(
    "args",
    [
        ["export-schema", "--output", "-"],
        ["create-admin", "--email", "a@example.com", "--password", "pw"],
        ["grant-credits", "--email", "a@example.com", "--amount", "5", "--reason", "gift"],
        ["seed-demo"],
        ["wait-for-db", "--timeout", "3"],
    ],
)
def test_other_genhub_commands_are_exec_d_directly(tmp_path: Path, fake_genhub: Path, args: list[str]) -> None:
    run = run_entrypoint(tmp_path, fake_genhub, *args)
    assert run.commands == [" ".join(args)]
    assert run.calls[0].pid == run.pid


def test_anything_else_is_exec_d_as_given(tmp_path: Path, fake_genhub: Path) -> None:
    run = run_entrypoint(tmp_path, fake_genhub, "sh", "-c", 'echo "port=$PORT"', PORT="8123")
    assert run.returncode == 0
    assert run.stdout == "port=8123\n"
    assert run.calls == []


def test_a_database_that_never_answers_stops_the_start(tmp_path: Path, fake_genhub: Path) -> None:
    run = run_entrypoint(tmp_path, fake_genhub, "serve", FAKE_FAIL="wait-for-db")
    assert run.returncode != 0
    assert run.commands == ["wait-for-db --timeout 60"]


def test_a_failed_migration_stops_the_start(tmp_path: Path, fake_genhub: Path) -> None:
    run = run_entrypoint(tmp_path, fake_genhub, "serve", FAKE_FAIL="migrate")
    assert run.returncode != 0
    assert run.commands == ["wait-for-db --timeout 60", "migrate"]


def test_an_unusable_local_storage_path_is_named(tmp_path: Path, fake_genhub: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    run = run_entrypoint(
        tmp_path, fake_genhub, "serve", STORAGE_BACKEND="local", LOCAL_STORAGE_PATH=str(blocker / "chunks")
    )
    assert run.returncode == 1
    assert "LOCAL_STORAGE_PATH" in run.stderr
    assert run.calls == []


def test_json_lines_hold_a_hostile_value_in_one_field(tmp_path: Path, fake_genhub: Path) -> None:
    # given a path whose name carries quotes, a backslash and a line that looks like a record
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    hostile = str(blocker / 'x" \\ \n{"level": "info", "forged": true}')
    # when the entrypoint names it, asked for JSON lines
    run = run_entrypoint(
        tmp_path, fake_genhub, "serve", STORAGE_BACKEND="local", LOCAL_STORAGE_PATH=hostile, LOG_FORMAT="json"
    )
    # then every line is one JSON object of its own keys, the path inside one field
    assert run.returncode == 1
    lines = [json.loads(line) for line in run.stderr.splitlines()]
    assert all(set(line) == {"ts", "level", "logger", "msg"} for line in lines)
    (error,) = [line for line in lines if line["level"] == "error"]
    assert hostile.replace("\n", "") in error["msg"] and error["logger"] == "entrypoint"


def test_a_usable_local_storage_path_is_created(tmp_path: Path, fake_genhub: Path) -> None:
    storage = tmp_path / "disk" / "chunks"
    run = run_entrypoint(tmp_path, fake_genhub, "serve", STORAGE_BACKEND="local", LOCAL_STORAGE_PATH=str(storage))
    assert run.returncode == 0, run.stderr
    assert storage.is_dir()


def _wait_for(predicate: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of ours counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _start_all(tmp_path: Path, fake: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["sh", str(ENTRYPOINT), "all"],
        env=_base_env(tmp_path, fake, FAKE_RUN="serve worker scheduler", PORT="9200"),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_all_runs_server_worker_and_scheduler_and_stops_them_on_sigterm(tmp_path: Path, fake_genhub: Path) -> None:
    process = _start_all(tmp_path, fake_genhub)
    try:
        assert _wait_for(lambda: len(_calls(tmp_path)) == 5), _calls(tmp_path)
        calls = _calls(tmp_path)
        assert [c.argv for c in calls[:2]] == ["wait-for-db --timeout 60", "migrate"]
        assert sorted(c.argv for c in calls[2:]) == ["scheduler", "serve --host 0.0.0.0 --port 9200", "worker"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert not any(_alive(c.pid) for c in calls[2:])
    finally:
        process.kill()
        process.communicate()


def test_all_fails_and_stops_the_rest_when_one_process_dies(tmp_path: Path, fake_genhub: Path) -> None:
    process = _start_all(tmp_path, fake_genhub)
    try:
        assert _wait_for(lambda: len(_calls(tmp_path)) == 5)
        calls = _calls(tmp_path)
        (worker,) = [c for c in calls if c.argv == "worker"]
        os.kill(worker.pid, signal.SIGKILL)
        assert process.wait(timeout=10) == 1
        assert not any(_alive(c.pid) for c in calls[2:])
    finally:
        process.kill()
        _, stderr = process.communicate()
    assert "exited on its own" in stderr


# --- the real thing -------------------------------------------------------------


def _genhub_command() -> Path | None:
    beside_python = Path(sys.executable).parent / "genhub"
    if beside_python.exists():
        return beside_python
    found = shutil.which("genhub")
    return Path(found) if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _admin_execute(sql: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
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


def _redis_answers() -> bool:
    from redis import Redis

    try:
        return bool(Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except Exception:
        return False


@dataclass
class Deployed:
    base_url: str
    process: subprocess.Popen[bytes]
    database_url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text()


def _create_database() -> str:
    """A new, empty database; its libpq URL."""
    name = f"genhub_deploy_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_admin_execute(f'CREATE DATABASE "{name}"'))
    except (TimeoutError, OSError) as exc:
        _unavailable(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {exc}")
    return f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    """`sh docker/entrypoint.sh serve` as the container runs it: ENVIRONMENT=production,
    an empty working directory (no .env), a fresh database, the server on a free $PORT."""
    genhub = _genhub_command()
    if genhub is None:
        _unavailable("the genhub command is not installed (pip install -e .)")
    if not _redis_answers():
        _unavailable(f"Redis not reachable at {REDIS_URL}")
    database_url = _create_database()
    workdir = tmp_path_factory.mktemp("deployed")
    port = _free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir),
        "GENHUB_BIN": str(genhub),
        "ENVIRONMENT": "production",
        "DATABASE_URL": database_url.replace("postgresql://", "postgresql+asyncpg://", 1),
        "REDIS_URL": REDIS_URL,
        "JWT_SECRET": secrets.token_urlsafe(48),
        # Production wants a mail server; nothing here sends mail, so nothing connects to it.
        "SMTP_HOST": "127.0.0.1",
        "MAIL_FROM": "noreply@genhub.example",
        "STORAGE_BACKEND": "local",
        "LOCAL_STORAGE_PATH": str(workdir / "chunks"),
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "DB_WAIT_TIMEOUT": "20",
    }
    log_path = workdir / "server.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            ["sh", str(ENTRYPOINT), "serve"], env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT
        )
    deployed = Deployed(f"http://127.0.0.1:{port}", process, database_url, log_path)
    try:
        yield deployed
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        asyncio.run(_admin_execute(f'DROP DATABASE IF EXISTS "{database_url.rsplit("/", 1)[1]}" WITH (FORCE)'))


def _wait_until_ready(deployed: Deployed, timeout: float = 90.0) -> httpx.Response | None:
    response = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and deployed.process.poll() is None:
        try:
            response = httpx.get(f"{deployed.base_url}/ready", timeout=2)
            if response.status_code == 200:
                return response
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    return response


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
def test_the_real_entrypoint_migrates_and_serves_graphql(deployed: Deployed) -> None:
    ready = _wait_until_ready(deployed)
    assert deployed.process.poll() is None, f"the server exited ({deployed.process.returncode}):\n{deployed.log()}"
    assert ready is not None and ready.status_code == 200, f"/ready: {ready and ready.text}\n{deployed.log()}"

    # exec'd: the process the "container runtime" started is now the server itself.
    cmdline = Path(f"/proc/{deployed.process.pid}/cmdline").read_bytes().split(b"\0")
    assert b"serve" in cmdline, cmdline

    assert httpx.get(f"{deployed.base_url}/health", timeout=5).status_code == 200
    response = httpx.post(f"{deployed.base_url}/graphql", json={"query": "{ __typename }"}, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"__typename": "Query"}}

    # The entrypoint migrated the fresh database before the server started.
    versions = asyncio.run(_fetch(deployed.database_url, "SELECT version_num FROM alembic_version"))
    assert len(versions) == 1, versions


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
def test_the_real_server_accepts_websocket_subscriptions(deployed: Deployed) -> None:
    """uvicorn serves WebSocket upgrades only with a WebSocket library installed."""
    assert _wait_until_ready(deployed) is not None, deployed.log()
    asyncio.run(_websocket_handshake(deployed.base_url.replace("http://", "ws://") + "/graphql"))


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
def test_sigterm_stops_the_real_server_gracefully(deployed: Deployed) -> None:
    assert _wait_until_ready(deployed) is not None, deployed.log()
    deployed.process.send_signal(signal.SIGTERM)
    # uvicorn shuts down, then re-raises the signal it caught: exit by SIGTERM (143
    # in a container) after a complete shutdown is the graceful path.
    assert deployed.process.wait(timeout=30) in (0, -signal.SIGTERM), deployed.log()
    assert "Application shutdown complete" in deployed.log()


async def _websocket_handshake(url: str) -> None:
    """The upgrade succeeds with the subscription protocol; an anonymous connection_init
    is either acknowledged or refused by the application (4401/4403), never by the server."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed
    from websockets.typing import Subprotocol

    async with connect(url, subprotocols=[Subprotocol("graphql-transport-ws")], open_timeout=10) as ws:
        assert ws.subprotocol == "graphql-transport-ws"
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        try:
            reply = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
        except ConnectionClosed as closed:
            assert closed.rcvd is not None and closed.rcvd.code in (4401, 4403), closed
            return
        assert reply["type"] == "connection_ack", reply
