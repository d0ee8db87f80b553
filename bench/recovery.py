"""Benchmark recovery from a worker crash: SIGKILL a worker with 50 jobs in flight, start a new one.

Everything is the project's own: a fresh PostgreSQL database (dropped afterwards), a private
redis-server on a free port, real `genhub worker` and `genhub scheduler` subprocesses with
the default leases (TASK_LEASE_SECONDS=10, TASK_LEASE_RENEW_SECONDS=2), and the simulated
provider made slow (2 s to accept a job, 3 s to deliver its output) so that jobs are caught
mid-flight. Half the generations are kicked first and the worker is killed once they are
all copying their outputs (mid-finalize, a lease held); the other half are kicked just
before, so they are waiting for the provider to accept them (mid-submit). A new worker
starts at once. For every job, the time from the SIGKILL to its final status (its
`finished_at`) is taken; the script prints the percentiles, and checks that every job
SUCCEEDED with one output asset and one capture, and that the ledger sums to the balance.

    .venv/bin/python bench/recovery.py [--jobs 50]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402
from taskiq.kicker import AsyncKicker  # noqa: E402

from bench.databases import drop_database, migrated_database  # noqa: E402
from bench.fanout_setup import private_redis  # noqa: E402
from bench.worker import bench_container, queued_generations  # noqa: E402
from domain.use_cases.generations import SUBMIT_TASK  # noqa: E402
from infrastructure.container import Container  # noqa: E402

DB_NAME = "genhub_bench_recovery"


def environment(db_url: str, redis_url: str, tmp: Path) -> dict[str, str]:
    own = ("DATABASE_", "REDIS_", "STORAGE_", "LOCAL_STORAGE", "SIMULATED_", "POLL_", "TASK_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(own)}
    env.update(
        {
            "PYTHONUNBUFFERED": "1",
            "ENVIRONMENT": "test",
            "DATABASE_URL": db_url,
            "REDIS_URL": redis_url,
            "STORAGE_BACKEND": "local",
            "LOCAL_STORAGE_PATH": str(tmp / "objects"),
            "DATA_DIR": str(tmp / "data"),
            "SIMULATED_STEPS": "1",
            "SIMULATED_STEP_SECONDS": "0.5",
            "SIMULATED_SUBMIT_SECONDS": "2",
            "SIMULATED_DOWNLOAD_SECONDS": "3",
            "POLL_INTERVAL_SECONDS": "1",
            "SEED_DEMO": "false",
            "LOG_LEVEL": "INFO",  # the readiness line ("genhub worker ready") is an INFO record
        }
    )
    return env


class Processes:
    """`genhub` subprocesses in their own process groups (a worker forks its children)."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str) -> None:
        log = (self.log_dir / f"{name}.log").open("ab")
        self.running[name] = subprocess.Popen(
            [sys.executable, "-m", "entrypoints.cli", *args],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def wait_ready(self, name: str, marker: str, timeout: float = 60.0) -> None:
        path = self.log_dir / f"{name}.log"
        deadline = time.monotonic() + timeout
        while marker not in (path.read_text(errors="replace") if path.exists() else ""):
            if time.monotonic() > deadline or self.running[name].poll() is not None:
                raise SystemExit(f"{name} did not start (see {path})")
            time.sleep(0.05)

    def kill(self, name: str, sig: signal.Signals) -> None:
        proc = self.running.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)

    def stop_all(self) -> None:
        for name in list(self.running):
            self.kill(name, signal.SIGTERM)


@contextlib.contextmanager
def processes(env: dict[str, str], log_dir: Path) -> Iterator[Processes]:
    procs = Processes(env, log_dir)
    try:
        procs.start("worker", "worker")
        procs.start("scheduler", "scheduler")
        procs.wait_ready("worker", "genhub worker ready")
        yield procs
    finally:
        procs.stop_all()


async def phases(c: Container, ids: list[uuid.UUID]) -> dict[str, int]:
    """Where each generation is: mid-submit (SUBMITTING), mid-finalize (PROCESSING with a lease held), ..."""
    async with c.uow() as uow:
        rows = await uow.session.execute(  # type: ignore[attr-defined]
            text(
                "select case when status = 'processing' and lease_token is not null then 'finalizing' "
                "else status end, count(*) from generations where id = any(:ids) group by 1"
            ),
            {"ids": ids},
        )
        return {str(phase): int(n) for phase, n in rows.all()}


async def wait_for(c: Container, ids: list[uuid.UUID], phase: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while (await phases(c, ids)).get(phase, 0) < len(ids):
        if time.monotonic() > deadline:
            raise SystemExit(f"not all {phase} after {timeout:.0f}s: {await phases(c, ids)}")
        await asyncio.sleep(0.05)


async def kick(c: Container, ids: list[uuid.UUID]) -> None:
    kicker = AsyncKicker(task_name=SUBMIT_TASK, broker=c.broker, labels={})
    for gid in ids:
        await kicker.kiq(generation_id=str(gid))


async def check_settled(c: Container, ids: list[uuid.UUID]) -> None:
    """Every job SUCCEEDED with one asset and one capture; each account equals its ledger, nothing reserved."""

    async def count(sql: str) -> int:
        async with c.uow() as uow:
            result = await uow.session.execute(text(sql), {"ids": ids})  # type: ignore[attr-defined]
            return int(result.scalar_one())

    succeeded = await count("select count(*) from generations where status = 'succeeded' and id = any(:ids)")
    assets = await count("select count(*) from assets where kind = 'output' and generation_id = any(:ids)")
    captures = await count("select count(*) from credit_ledger where kind = 'capture' and generation_id = any(:ids)")
    assert (succeeded, assets, captures) == (len(ids),) * 3, (succeeded, assets, captures)
    async with c.uow() as uow:
        users = await uow.session.execute(  # type: ignore[attr-defined]
            text("select distinct user_id from generations where id = any(:ids)"), {"ids": ids}
        )
        for (user_id,) in users.all():
            account, ledger = await uow.credits.balance(user_id), await uow.credits.ledger_totals(user_id)
            assert account == ledger and account.reserved == 0, (account, ledger)


async def finished_after(c: Container, ids: list[uuid.UUID], killed_at: datetime) -> dict[uuid.UUID, float]:
    async with c.uow() as uow:
        rows = await uow.session.execute(  # type: ignore[attr-defined]
            text("select id, finished_at from generations where id = any(:ids) and finished_at is not null"),
            {"ids": ids},
        )
        return {gid: (at - killed_at).total_seconds() for gid, at in rows.all()}


def percentile(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


async def run(jobs: int, tmp: Path, redis_url: str, db_url: str) -> None:
    env = environment(db_url, redis_url, tmp)
    with processes(env, tmp) as procs:
        async with bench_container(env) as c:
            ids = await queued_generations(c, jobs)
            copying, submitting = ids[: jobs // 2], ids[jobs // 2 :]
            await kick(c, copying)
            await wait_for(c, copying, "finalizing")
            await kick(c, submitting)
            await wait_for(c, submitting, "submitting")
            at_kill = await phases(c, ids)
            killed_at = datetime.now(UTC)
            killed = time.monotonic()
            procs.kill("worker", signal.SIGKILL)
            procs.start("new-worker", "worker")
            procs.wait_ready("new-worker", "genhub worker ready")
            ready = time.monotonic() - killed
            while len(done := await finished_after(c, ids, killed_at)) < jobs:
                if time.monotonic() - killed > 180:
                    raise SystemExit(f"{len(done)} of {jobs} final after 180 s (see {tmp})")
                await asyncio.sleep(0.1)
            await check_settled(c, ids)
    # Jobs that ended before the kill (an output copied in time) were not affected by it.
    affected = {gid: seconds for gid, seconds in done.items() if seconds > 0}
    every = sorted(affected.values())
    print(f"jobs at the SIGKILL: {at_kill}  ({len(affected)} of {jobs} not yet final)")
    print(f"new worker ready {ready:.1f}s after the kill (imports, pools, consumer group)")
    print(
        f"SIGKILL -> final, the {len(every)} affected jobs:  "
        + "  ".join(f"p{p} {percentile(every, p):.1f}s" for p in (50, 90, 99))
        + f"  max {every[-1]:.1f}s"
    )
    for name, group in (("mid-finalize", copying), ("mid-submit", submitting)):
        values = sorted(affected[g] for g in group if g in affected)
        if values:
            print(f"  {name:13s} ({len(values)}): p50 {statistics.median(values):.1f}s  max {values[-1]:.1f}s")
    print("every job SUCCEEDED once: one output asset, one capture each; every account equals its ledger")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=50)
    args = parser.parse_args()
    db_url = await migrated_database(DB_NAME)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="genhub-bench-recovery-") as tmp,
            private_redis(Path(tmp)) as redis_url,
        ):
            await run(args.jobs, Path(tmp), redis_url, db_url)
    finally:
        await drop_database(DB_NAME)
    print(f"(machine: {os.cpu_count()} cores shared by PostgreSQL, Redis, the workers, the scheduler and this script)")


if __name__ == "__main__":
    asyncio.run(main())
