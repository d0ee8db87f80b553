"""The `genhub` command line: reads Settings from the environment once and starts a process with them.

The API server, worker and scheduler are started through their entry points
(entrypoints/api.py, entrypoints/worker.py); the operator commands open the Services
(infrastructure/bootstrap.py) and call bound use cases, as a request would.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from entrypoints.catalogue_command import add_catalogue_parser, run_catalogue
from entrypoints.documents_command import add_documents_parser, run_documents
from entrypoints.outbox_command import add_outbox_parser, run_outbox
from entrypoints.storage_command import add_storage_parser, run_storage
from infrastructure.settings import Settings, get_settings

if TYPE_CHECKING:
    from infrastructure.db.connection_budget import Role

#: A long-running command's refusals to start (as log records: JSON lines when asked).
log = logging.getLogger("genhub.cli")


def _print(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


async def _migrate(settings: Settings, downgrade: str | None = None) -> None:
    from infrastructure.migrations import runner

    url = settings.effective_database_url
    runner.ensure_sqlite_dir(url)
    if downgrade:
        await runner.downgrade(url, downgrade)
    else:
        await runner.upgrade(url)


async def _wait_for_db(settings: Settings, wait_seconds: float) -> bool:
    from sqlalchemy import text

    from infrastructure.db.engine import create_engine

    deadline = time.monotonic() + wait_seconds
    engine = create_engine(settings)
    try:
        while True:
            try:
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
                return True
            except Exception as exc:
                if time.monotonic() >= deadline:
                    _print(f"database not reachable after {wait_seconds:.0f}s: {exc}")
                    return False
                await asyncio.sleep(1.0)
    finally:
        await engine.dispose()


async def _seed_demo(settings: Settings) -> str:
    """Seed and return a ready access token for the demo account."""
    from infrastructure.bootstrap import open_services

    # A token to paste into GraphiQL for a working day.
    day = settings.model_copy(update={"access_token_ttl_seconds": 24 * 3600})
    async with open_services(day) as services:
        accounts = services.accounts
        user, _models = await accounts.seed_demo(settings.demo_email, settings.demo_password, settings.demo_credits)
        return str(accounts.tokens.issue_access(user.id, user.role).token)


async def _create_admin(settings: Settings, email: str, password: str) -> int:
    from domain.errors import InvalidInput
    from infrastructure.bootstrap import open_services

    async with open_services(settings) as services:
        try:
            user, created = await services.accounts.ensure_admin(email, password)
        except InvalidInput as exc:
            _print(f"error: {exc.message}")
            return 2
    _print(f"{'created' if created else 'promoted'} admin {user.email} ({user.id})")
    return 0


async def _grant(settings: Settings, email: str, amount: int, reason: str, key: str | None) -> int:
    from domain.errors import DomainError
    from infrastructure.bootstrap import open_services

    async with open_services(settings) as services:
        user = await services.accounts.find(email)
        if user is None:
            _print(f"error: no account with e-mail {email}")
            return 2
        try:
            result = await services.credits.grant(None, user.id, amount, reason, key)
        except DomainError as exc:
            _print(f"error: {exc.message}")
            return 2
    b = result.balance
    _print(f"{user.email}: balance {b.balance}, reserved {b.reserved}, available {b.available}")
    return 0


def startup_banner(base_url: str, *, developer_pages: bool) -> list[str]:
    """What `genhub serve` prints first: where it listens and, when they are on, the demo and GraphiQL."""
    if not developer_pages:
        return [f"genhub on {base_url}  (no demo page or GraphiQL: GRAPHIQL is off)"]
    return [
        f"genhub on {base_url}",
        f"  demo page: {base_url}/demo",
        f"  GraphiQL:  {base_url}/graphql",
    ]


def _serve(settings: Settings, host: str, port: int, processes: int = 1) -> int:
    from infrastructure.logging_setup import configure_process_logging, uvicorn_log_config

    configure_process_logging(settings)
    problems = settings.production_problems()
    if problems:
        log.error("genhub refuses to start in production: %s", "; ".join(problems), extra={"problems": problems})
        return 2
    if processes > 1 and (settings.is_sqlite or not settings.redis_url):
        # Embedded mode keeps the queue and fan-out in one process: several would not see each other.
        log.error("--workers > 1 needs DATABASE_URL (PostgreSQL) and REDIS_URL")
        return 2
    if not _within_budget(settings, "serve", processes):
        return 2
    import uvicorn

    from entrypoints.api import create_app
    from entrypoints.uvicorn_protocols import ErrorReleasingWebSocketsProtocol, ReleasingHttpToolsProtocol

    if settings.is_sqlite:
        asyncio.run(_migrate(settings))
    token = asyncio.run(_seed_demo(settings)) if settings.should_seed_demo else None
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    if "public_base_url" not in settings.model_fields_set and not settings.is_production:
        # Signed /files URLs must name the port this server listens on (`make run PORT=9000`).
        settings = settings.model_copy(update={"public_base_url": f"http://{shown}:{port}"})
    for line in startup_banner(f"http://{shown}:{port}", developer_pages=settings.graphiql_enabled):
        _print(line)
    if token:
        _print(f"demo account: {settings.demo_email} / {settings.demo_password}")
        _print(f'access token (24 h), paste as header {{"Authorization": "Bearer {token}"}}')
    common: dict[str, object] = {}
    if processes > 1:
        # Each process builds its own app from the same environment (and its own adapters).
        target: object = "entrypoints.api:create_app"
        common = {"factory": True, "workers": processes}
    else:
        target = create_app(settings)
    uvicorn.run(
        target,  # type: ignore[arg-type]
        **common,  # type: ignore[arg-type]
        host=host,
        port=port,
        log_config=uvicorn_log_config(settings),
        http=ReleasingHttpToolsProtocol,
        ws=ErrorReleasingWebSocketsProtocol,
        ws_ping_interval=settings.ws_keepalive_seconds,
        ws_max_size=settings.ws_max_message_bytes,  # larger messages: closed with 1009 (graph/ws_frames.py)
        ws_per_message_deflate=settings.ws_compression,
        timeout_graceful_shutdown=10,
        # The client address is ours to compute (TRUSTED_PROXY_HOPS, graph/client_address.py):
        # uvicorn's rewrite takes the left-most, client-written X-Forwarded-For entry under
        # FORWARDED_ALLOW_IPS=*. Nothing reads the scheme it would also take from X-Forwarded-Proto.
        proxy_headers=False,
        server_header=False,  # no "server: uvicorn" on every response
    )
    return 0


def _within_budget(settings: Settings, role: Role, processes: int = 1) -> bool:
    """Logs the command's PostgreSQL connection budget; False when the server cannot hold it."""
    from infrastructure.db.connection_budget import budget_for, check_budget

    return asyncio.run(check_budget(settings, budget_for(settings, role, processes)))


def _worker(settings: Settings, processes: int) -> int:
    """taskiq's worker command, run here with the process's logging (taskiq's own set-up is off)."""
    from infrastructure.logging_setup import configure_process_logging, taskiq_log_level

    configure_process_logging(settings)
    if not _within_budget(settings, "worker", processes):
        return 2
    from taskiq.cli.worker.args import WorkerArgs
    from taskiq.cli.worker.run import run_worker

    args = ["entrypoints.worker:worker_broker", "--workers", str(processes), "--ack-type", "when_saved"]
    # The broker reads no more messages than this many slots allow (infrastructure/task_stream.py).
    args += ["--max-async-tasks", str(settings.worker_max_tasks), "--max-prefetch", "0"]
    args += ["--no-configure-logging", "--log-level", taskiq_log_level(settings)]
    return run_worker(WorkerArgs.from_cli(args)) or 0


def _scheduler(settings: Settings) -> int:
    """taskiq's scheduler command, run here with the process's logging (taskiq's own set-up is off)."""
    from infrastructure.logging_setup import configure_process_logging, taskiq_log_level

    configure_process_logging(settings)
    _within_budget(settings, "scheduler")
    from taskiq.cli.scheduler.args import SchedulerArgs
    from taskiq.cli.scheduler.run import run_scheduler

    args = ["entrypoints.worker:scheduler", "--skip-first-run", "--no-configure-logging"]
    args += ["--log-level", taskiq_log_level(settings)]
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_scheduler(SchedulerArgs.from_cli(args)))
    return 0


def _migrate_command(settings: Settings, downgrade: str | None) -> int:
    from infrastructure.logging_setup import configure_process_logging

    configure_process_logging(settings)
    if not _within_budget(settings, "migrate"):
        return 2
    asyncio.run(_migrate(settings, downgrade))
    _print("database is at " + (downgrade or "head"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genhub", description="genhub: AI media generation over GraphQL.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the API server (uvicorn)")
    serve.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    serve.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("WEB_CONCURRENCY", "1")),
        help="API processes (default $WEB_CONCURRENCY or 1; more than 1 needs PostgreSQL and Redis)",
    )
    worker = sub.add_parser("worker", help="run Taskiq worker processes (needs REDIS_URL)")
    worker.add_argument("--workers", type=int, default=1)
    sub.add_parser("scheduler", help="run the Taskiq scheduler (exactly one per deployment)")
    migrate = sub.add_parser("migrate", help="apply database migrations")
    migrate.add_argument("--downgrade", metavar="REVISION", help="downgrade to REVISION instead (e.g. base)")
    wait = sub.add_parser("wait-for-db", help="wait until the database answers")
    wait.add_argument("--timeout", type=float, default=60.0)
    export = sub.add_parser("export-schema", help="write the GraphQL SDL")
    export.add_argument("--output", default="schema.graphql", help="file to write, or - for stdout")
    export.add_argument("--check", action="store_true", help="fail when the file differs from the code")
    admin = sub.add_parser("create-admin", help="create an admin, or promote an existing account")
    admin.add_argument("--email", required=True)
    admin.add_argument("--password", required=True)
    grant = sub.add_parser("grant-credits", help="grant credits to an account")
    grant.add_argument("--email", required=True)
    grant.add_argument("--amount", type=int, required=True)
    grant.add_argument("--reason", required=True)
    grant.add_argument("--idempotency-key", default=None)
    sub.add_parser("seed-demo", help="create the demo account and simulated models")
    add_catalogue_parser(sub)
    add_documents_parser(sub)
    add_storage_parser(sub)
    add_outbox_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = get_settings()
    command: str = args.command
    if command == "serve":
        return _serve(settings, args.host, args.port, args.workers)
    if command == "worker":
        return _worker(settings, args.workers)
    if command == "scheduler":
        return _scheduler(settings)
    if command == "migrate":
        return _migrate_command(settings, args.downgrade)
    if command == "wait-for-db":
        from infrastructure.logging_setup import configure_process_logging

        configure_process_logging(settings)  # a step of every container start: its lines too
        return 0 if asyncio.run(_wait_for_db(settings, args.timeout)) else 1
    if command == "export-schema":
        from graph.schema import export_sdl

        sdl = export_sdl()
        if args.output == "-":
            sys.stdout.write(sdl)
            return 0
        path = Path(args.output)
        if args.check:
            same = path.exists() and path.read_text(encoding="utf-8") == sdl
            _print(f"{path} is {'up to date' if same else 'OUT OF DATE: run genhub export-schema'}")
            return 0 if same else 1
        path.write_text(sdl, encoding="utf-8")
        _print(f"wrote {path}")
        return 0
    if command == "create-admin":
        return asyncio.run(_create_admin(settings, args.email, args.password))
    if command == "grant-credits":
        return asyncio.run(_grant(settings, args.email, args.amount, args.reason, args.idempotency_key))
    if command == "seed-demo":
        if settings.is_sqlite:
            asyncio.run(_migrate(settings))
        token = asyncio.run(_seed_demo(settings))
        _print(f"demo account: {settings.demo_email} / {settings.demo_password}\naccess token: {token}")
        return 0
    if command == "catalogue":
        return run_catalogue(settings, args)
    if command == "documents":
        return run_documents(settings, args)
    if command == "storage":
        return run_storage(settings, args)
    if command == "outbox":
        return run_outbox(settings, args)
    raise AssertionError(command)


if __name__ == "__main__":
    raise SystemExit(main())
