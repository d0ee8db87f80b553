"""How many PostgreSQL connections a genhub process may open, and whether the server has room for them.

A process that opens the Services (an API process, a worker process) holds the
SQLAlchemy pool (`DATABASE_POOL_SIZE` + `DATABASE_MAX_OVERFLOW`) and the driver-level pool
(`DATABASE_START_POOL_SIZE`); the scheduler opens none; `genhub migrate` one. A command
that starts N processes (`serve --workers N`, `worker --workers N`) needs N budgets.
At start the entry point logs the figure, refuses to start when it alone exceeds what the
server allows (`max_connections` minus its reserved connections), and warns when
`DATABASE_PROCESSES` budgets, or the connections free right now, do not cover it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from infrastructure.settings import Settings

log = logging.getLogger("genhub.db.budget")

Role = Literal["serve", "worker", "scheduler", "migrate"]

#: What the server allows and uses: reserved connections are PostgreSQL 16's `reserved_connections`
#: (absent before, read as 0) plus `superuser_reserved_connections`; in use: client sessions but ours.
CAPACITY_SQL = text(
    "SELECT current_setting('max_connections')::int,"
    " current_setting('superuser_reserved_connections')::int"
    " + coalesce(nullif(current_setting('reserved_connections', true), '')::int, 0),"
    " (SELECT count(*) FROM pg_stat_activity"
    "  WHERE backend_type = 'client backend' AND pid <> pg_backend_pid())::int"
)
CAPACITY_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class ConnectionBudget:
    """The most PostgreSQL connections one command may hold: `per_process` times `processes`."""

    role: Role
    processes: int
    pool_size: int
    max_overflow: int
    driver_pool_size: int

    @property
    def per_process(self) -> int:
        return self.pool_size + self.max_overflow + self.driver_pool_size

    @property
    def total(self) -> int:
        return self.per_process * self.processes


@dataclass(frozen=True, slots=True)
class ServerCapacity:
    max_connections: int
    reserved: int
    in_use: int

    @property
    def usable(self) -> int:
        """Connections an ordinary role may open on this server, all sessions together."""
        return self.max_connections - self.reserved

    @property
    def free(self) -> int:
        return max(0, self.usable - self.in_use)


@dataclass(frozen=True, slots=True)
class Verdict:
    refusal: str | None
    warnings: tuple[str, ...]


def budget_for(settings: Settings, role: Role, processes: int = 1) -> ConnectionBudget:
    """What `genhub <role>` started with `processes` processes may open (SQLite: its one connection)."""
    if role == "scheduler":
        return ConnectionBudget(role, processes, 0, 0, 0)
    if role == "migrate" or settings.is_sqlite:
        return ConnectionBudget(role, processes, 1, 0, 0)
    return ConnectionBudget(
        role,
        processes,
        settings.database_pool_size,
        settings.database_max_overflow,
        settings.database_start_pool_size,
    )


def judge(budget: ConnectionBudget, capacity: ServerCapacity, deployment_processes: int) -> Verdict:
    """Refuse when the command's own budget exceeds what the server allows; warn on what may not fit."""
    allows = f"the server allows {capacity.usable} (max_connections {capacity.max_connections} - {capacity.reserved} reserved)"
    if budget.total > capacity.usable:
        return Verdict(
            f"genhub {budget.role} may open {budget.total} PostgreSQL connections ({formula(budget)}) but {allows}:"
            " lower DATABASE_POOL_SIZE, DATABASE_MAX_OVERFLOW or DATABASE_START_POOL_SIZE, or raise max_connections",
            (),
        )
    warnings: list[str] = []
    if budget.role in ("serve", "worker"):
        deployment = budget.per_process * deployment_processes
        if deployment > capacity.usable:
            warnings.append(
                f"{deployment_processes} processes (DATABASE_PROCESSES) of {budget.per_process} connections each may open"
                f" {deployment} PostgreSQL connections but {allows}: the last to connect will be refused"
                " (TooManyConnectionsError); lower the pool sizes or raise max_connections"
            )
    if budget.total > capacity.free:
        warnings.append(
            f"genhub {budget.role} may open {budget.total} PostgreSQL connections but only {capacity.free} are free"
            f" now ({capacity.in_use} in use by other sessions; {allows})"
        )
    return Verdict(None, tuple(warnings))


def formula(budget: ConnectionBudget) -> str:
    return (
        f"({budget.pool_size} pool + {budget.max_overflow} overflow + {budget.driver_pool_size} driver pool)"
        f" x {budget.processes} process{'es' if budget.processes != 1 else ''}"
    )


async def read_capacity(url: str) -> ServerCapacity:
    """The server's limits and current sessions, over one short-lived connection."""
    engine = create_async_engine(
        url,
        poolclass=NullPool,
        connect_args={"timeout": CAPACITY_TIMEOUT_SECONDS, "server_settings": {"application_name": "genhub"}},
    )
    try:
        async with engine.connect() as conn:
            row = (await conn.execute(CAPACITY_SQL)).one()
    finally:
        await engine.dispose()
    return ServerCapacity(max_connections=int(row[0]), reserved=int(row[1]), in_use=int(row[2]))


async def check_budget(settings: Settings, budget: ConnectionBudget) -> bool:
    """Log the budget (one structured line) and the server's room for it; False: do not start."""
    fields: dict[str, object] = {
        "role": budget.role,
        "connection_budget": budget.total,
        "per_process": budget.per_process,
        "processes": budget.processes,
        "pool_size": budget.pool_size,
        "max_overflow": budget.max_overflow,
        "driver_pool_size": budget.driver_pool_size,
        "deployment_processes": settings.database_processes,
    }
    if settings.is_sqlite or budget.total == 0:
        log.info("connection budget: %d %s", budget.total, formula(budget), extra=fields)
        return True
    try:
        capacity = await read_capacity(settings.effective_database_url)
    except Exception as exc:  # the server may be down at start: /ready and the pools report that later
        log.warning(
            "connection budget: %d %s; the server's max_connections could not be read: %r",
            budget.total,
            formula(budget),
            exc,
            extra=fields,
        )
        return True
    fields.update(
        max_connections=capacity.max_connections,
        reserved_connections=capacity.reserved,
        connections_in_use=capacity.in_use,
        connections_usable=capacity.usable,
    )
    log.info(
        "connection budget: %d %s; the server allows %d, %d in use",
        budget.total,
        formula(budget),
        capacity.usable,
        capacity.in_use,
        extra=fields,
    )
    verdict = judge(budget, capacity, settings.database_processes)
    for warning in verdict.warnings:
        log.warning("%s", warning, extra=fields)
    if verdict.refusal is not None:
        log.error("%s", verdict.refusal, extra=fields)
        return False
    return True
