"""The PostgreSQL connection budget: one figure per command, judged against what the server allows."""

from __future__ import annotations

from pathlib import Path

import pytest

from infrastructure.db.connection_budget import ConnectionBudget, ServerCapacity, budget_for, judge
from infrastructure.settings import Settings

PG = "postgresql+asyncpg://genhub@db/genhub"
DEFAULT_SERVER = ServerCapacity(max_connections=100, reserved=3, in_use=0)  # PostgreSQL's defaults


def pg_settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path, database_url=PG, **values)  # type: ignore[arg-type]


def test_a_process_budget_is_every_pool_it_opens(tmp_path: Path) -> None:
    settings = pg_settings(tmp_path, database_pool_size=7, database_max_overflow=2, database_start_pool_size=3)
    serve = budget_for(settings, "serve", processes=4)
    assert (serve.per_process, serve.total) == (12, 48)
    assert budget_for(settings, "worker").total == 12
    assert budget_for(settings, "scheduler").total == 0  # builds a broker, opens no pool
    assert budget_for(settings, "migrate").total == 1


def test_sqlite_holds_one_connection(tmp_path: Path) -> None:
    assert budget_for(Settings(_env_file=None, data_dir=tmp_path), "serve").total == 1  # type: ignore[call-arg]


def test_the_defaults_fit_a_small_deployment_on_a_default_server(tmp_path: Path) -> None:
    # given two API replicas, a worker, the scheduler and a migration, all on the defaults
    settings = pg_settings(tmp_path)
    api, worker = budget_for(settings, "serve"), budget_for(settings, "worker")
    everything = 2 * api.total + worker.total + budget_for(settings, "scheduler").total + 1
    # then they fit PostgreSQL's default max_connections with room for operators' sessions
    assert everything <= DEFAULT_SERVER.usable * 2 // 3
    # and DATABASE_PROCESSES (two replicas and a worker) raises no warning there
    assert judge(api, DEFAULT_SERVER, settings.database_processes).warnings == ()


def test_a_budget_the_server_cannot_hold_is_refused_by_name() -> None:
    budget = ConnectionBudget("serve", processes=2, pool_size=40, max_overflow=10, driver_pool_size=10)
    verdict = judge(budget, DEFAULT_SERVER, deployment_processes=1)
    assert verdict.refusal is not None
    for part in ("120", "97", "max_connections 100", "DATABASE_POOL_SIZE", "DATABASE_START_POOL_SIZE"):
        assert part in verdict.refusal


def test_one_more_connection_than_the_server_allows_is_refused() -> None:
    fits = ConnectionBudget("worker", processes=1, pool_size=90, max_overflow=5, driver_pool_size=2)
    assert judge(fits, DEFAULT_SERVER, 1).refusal is None
    over = ConnectionBudget("worker", processes=1, pool_size=90, max_overflow=5, driver_pool_size=3)
    assert judge(over, DEFAULT_SERVER, 1).refusal is not None


@pytest.mark.parametrize(("processes", "warned"), [(4, False), (5, True)])
def test_a_deployment_of_budgets_over_the_limit_is_a_warning(processes: int, warned: bool) -> None:
    budget = ConnectionBudget("serve", processes=1, pool_size=10, max_overflow=5, driver_pool_size=5)
    verdict = judge(budget, DEFAULT_SERVER, deployment_processes=processes)
    assert verdict.refusal is None
    assert any("DATABASE_PROCESSES" in w for w in verdict.warnings) is warned


def test_connections_taken_by_other_sessions_are_a_warning() -> None:
    busy = ServerCapacity(max_connections=100, reserved=3, in_use=90)
    budget = ConnectionBudget("serve", processes=1, pool_size=10, max_overflow=5, driver_pool_size=5)
    (warning,) = judge(budget, busy, deployment_processes=1).warnings
    assert "only 7 are free" in warning and "90 in use" in warning


def test_scheduler_and_migrate_are_not_counted_in_the_deployment() -> None:
    tiny = ServerCapacity(max_connections=5, reserved=3, in_use=0)
    migrate = ConnectionBudget("migrate", processes=1, pool_size=1, max_overflow=0, driver_pool_size=0)
    assert judge(migrate, tiny, deployment_processes=50) == judge(migrate, tiny, deployment_processes=1)


def test_the_worked_example_in_the_deploy_guide_uses_the_defaults(tmp_path: Path) -> None:
    # given the guide's worked example and the defaults it claims to use
    guide = (Path(__file__).resolve().parents[2] / "docs" / "deploy.md").read_text(encoding="utf-8")
    settings = pg_settings(tmp_path)
    api = budget_for(settings, "serve")
    example = f"{api.pool_size} + {api.max_overflow} + {api.driver_pool_size} = {api.per_process} per process"
    # then its figures are today's
    assert example in guide
    assert f"2 x {api.per_process} = {2 * api.per_process}" in guide
    assert f"`DATABASE_PROCESSES={settings.database_processes}` (the default)" in guide
    total = 2 * api.total + budget_for(settings, "worker").total + budget_for(settings, "migrate").total
    assert f"| total | | {total} of the {DEFAULT_SERVER.usable} the server allows |" in guide
