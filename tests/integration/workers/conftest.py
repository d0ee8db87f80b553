"""Worker subprocesses (`genhub worker`, `genhub scheduler`) on the test PostgreSQL DB and Redis DB.

The subprocesses get their settings through environment variables only (the broker
is built from the environment at import). The test side opens its own container
with a Redis broker, so `generate` enqueues to the same stream the worker reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest
from redis.asyncio import Redis

from infrastructure.container import Container, open_container
from infrastructure.queue import build_broker
from infrastructure.settings import Settings
from tests.fixtures.fake_kie import FAKE_API_KEY, FakeKieServer
from tests.fixtures.redis_server import free_port
from tests.fixtures.smtp import InProcessSmtp
from tests.integration.workers.world import World, new_world

ROOT = Path(__file__).resolve().parents[3]
CALLBACK_SECRET = "test-kie-callback-secret"
# Shared by the xdist workers (and by concurrent test runs): nothing flushes it, and each
# module's stream has a name of its own (worker_env).
WORKER_REDIS_DB = int(os.environ.get("TEST_WORKER_REDIS_DB", "10"))
# Variables of ours the developer's shell may hold; the subprocess must see only the test's.
_OWN_PREFIXES = (
    "DATABASE_",
    "REDIS_",
    "STORAGE_",
    "LOCAL_STORAGE",
    "S3_",
    "SIMULATED_",
    "KIE_",
    "REPLICATE_",
    "FAL_",
    "POLL_",
    "TASK_",
)


def base_env(*, postgres_url: str, redis_url: str, storage: Path, kie_url: str, **extra: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES)}
    env.update(
        {
            "PYTHONUNBUFFERED": "1",
            "ENVIRONMENT": "test",
            "DATABASE_URL": postgres_url,
            "REDIS_URL": redis_url,
            "STORAGE_BACKEND": "local",
            "LOCAL_STORAGE_PATH": str(storage / "objects"),
            "DATA_DIR": str(storage / "data"),
            "SIMULATED_STEPS": "2",
            "SIMULATED_STEP_SECONDS": "0.05",
            "POLL_INTERVAL_SECONDS": "1",
            "RETRY_BASE_SECONDS": "0.2",
            "RETRY_MAX_SECONDS": "1",
            "KIE_BASE_URL": kie_url,
            "KIE_API_KEY": FAKE_API_KEY,
            "KIE_CALLBACK_SECRET": CALLBACK_SECRET,
            "KIE_RATE_LIMIT": "1000",
            "SEED_DEMO": "false",
            "LOG_LEVEL": "INFO",
        }
    )
    env.update({key.upper(): str(value) for key, value in extra.items()})
    return env


def settings_from_env(env: dict[str, str]) -> Settings:
    """The same settings the subprocesses read, for the test side."""
    keys = {k.lower(): v for k, v in env.items() if k.isupper() and k.lower() in Settings.model_fields}
    return Settings(_env_file=None, **keys)  # type: ignore[call-arg]


@dataclass
class Processes:
    """`genhub` subprocesses, each in its own process group (a worker forks children)."""

    env: dict[str, str]
    log_dir: Path
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _logs: list[IO[bytes]] = field(default_factory=list)

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{name}.log").open("ab")
        self._logs.append(log)
        proc = subprocess.Popen(
            [sys.executable, "-m", "entrypoints.cli", *args],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.running[name] = proc
        return proc

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        proc = self.running.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def stop_all(self) -> None:
        for name in list(self.running):
            self.kill(name, signal.SIGTERM)
        for log in self._logs:
            log.close()

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}"
            for path in sorted(self.log_dir.glob("*.log"))
        )

    def wait_ready(self, name: str, timeout: float = 30.0) -> None:
        """Until the process logs that it listens (a worker) or started (the scheduler)."""
        path = self.log_dir / f"{name}.log"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = path.read_text(errors="replace") if path.exists() else ""
            if "genhub worker ready" in text or "Starting scheduler" in text:
                return
            proc = self.running.get(name)
            if proc is not None and proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"{name} did not start:\n{self.logs()}")


@contextlib.contextmanager
def worker_processes(env: dict[str, str], log_dir: Path, *, scheduler: bool = True) -> Iterator[Processes]:
    log_dir.mkdir(parents=True, exist_ok=True)
    procs = Processes(env, log_dir)
    try:
        procs.start("worker", "worker")
        if scheduler:
            procs.start("scheduler", "scheduler")
        procs.wait_ready("worker")
        if scheduler:
            procs.wait_ready("scheduler")
        yield procs
    finally:
        procs.stop_all()


@pytest.fixture(scope="module")
def worker_env(
    postgres_url: str, redis_url: str, fake_kie_server: FakeKieServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """Settings for one module's processes: its own task stream, so concurrent test runs never share one.

    The stream lives in a Redis DB of its own (not the fixtures' DB, which other test
    modules flush: a flush deletes the stream and its consumer group under a running worker).
    """
    storage = tmp_path_factory.mktemp("worker-storage")
    worker_redis = f"{redis_url.rsplit('/', 1)[0]}/{WORKER_REDIS_DB}"
    queue = f"genhub:tasks:test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    yield base_env(
        postgres_url=postgres_url,
        redis_url=worker_redis,
        storage=storage,
        kie_url=fake_kie_server.fake.base_url,
        task_queue_name=queue,
    )
    asyncio.run(_delete_key(worker_redis, queue))


async def _delete_key(url: str, key: str) -> None:
    client = Redis.from_url(url)
    try:
        await client.delete(key)
    finally:
        await client.aclose()


@contextlib.asynccontextmanager
async def side_container(env: dict[str, str]) -> AsyncIterator[Container]:
    """A container like the API's, enqueuing through its own Redis stream broker."""
    settings = settings_from_env(env)
    broker = build_broker(settings)
    await broker.startup()  # declares the consumer group, so nothing kicked before the worker reads is lost
    try:
        async with open_container(settings, broker=broker) as container:
            yield container
    finally:
        await broker.shutdown()


@pytest.fixture
async def world_in(clean_postgres: str) -> Any:
    """Factory: `async with world_in(env) as world` gives a fresh user with credits."""

    @contextlib.asynccontextmanager
    async def make(env: dict[str, str]) -> AsyncIterator[World]:
        async with side_container(env) as container:
            yield await new_world(container)

    return make


@pytest.fixture(scope="module")
def smtp() -> Iterator[InProcessSmtp]:
    """An SMTP server taking mail for the module's worker processes (tests switch its mode)."""
    server = InProcessSmtp(free_port(), "accept")
    server.start()
    yield server
    server.stop()
