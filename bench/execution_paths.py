"""The operation-plan cache's own gain: the same operations on the planned path and on strawberry's.

genhub runs HTTP queries and mutations from cached operation plans (graph/execution.py)
and everything else through strawberry's per-request extension lifecycle. This measures
the two alone — no HTTP, no network — on one in-process app (embedded defaults: SQLite,
in-memory queue): the same schema limits, the same context and container, the same
operations, interleaved round by round. It prints CPU per operation (median over rounds)
and the ratio, for:

- `me`: the smallest signed-in read (the engine's fixed cost dominates);
- the history page: 20 generations with model and outputs (per-field work dominates);
- a typed mutation failure (`cancelGeneration` of a missing id: NotFound).

    .venv/bin/python bench/execution_paths.py [--rounds 7] [--calls 300]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from strawberry.extensions import SchemaExtension  # noqa: E402

from domain.catalogue import ModelKind  # noqa: E402
from domain.use_cases import catalogue, credits, generations  # noqa: E402
from domain.use_cases.auth import ensure_user  # noqa: E402
from domain.use_cases.rate_limits import RateRule  # noqa: E402
from domain.users import Principal, Role  # noqa: E402
from entrypoints.api import create_app  # noqa: E402
from graph.context import Context, Credentials  # noqa: E402
from graph.limits import query_limits  # noqa: E402
from graph.schema import GenhubSchema, build_schema  # noqa: E402
from infrastructure.migrations.runner import ensure_sqlite_dir, upgrade  # noqa: E402
from infrastructure.settings import Settings  # noqa: E402

ME = "query Me { me { id email role } }"
HISTORY = """query History {
  generations(first: 20) { edges { cursor node { id status progress prompt createdAt
    model { id slug name } outputs { id kind contentType size } } } pageInfo { hasNextPage endCursor } }
}"""
CANCEL = 'mutation Cancel { cancelGeneration(id: "00000000-0000-0000-0000-000000000000") { __typename } }'


class Passive(SchemaExtension):
    """No hooks: its presence alone selects strawberry's lifecycle (as tracing does)."""


async def seed(container: Any) -> str:
    user, _ = await ensure_user(
        email="bench@example.com", password="bench password 1", role=Role.USER, uow=container.uow(),
        hasher=container.hasher, clock=container.clock,
    )  # fmt: skip
    model = await catalogue.upsert_model(
        actor=None, slug="bench-image", name="Bench image", provider="simulated", kind=ModelKind.IMAGE,
        cost_credits=1, capabilities={"params": {}, "deadlineSeconds": 3600}, is_active=True,
        known_providers=frozenset({"simulated"}), uow=container.uow(), catalogue=container.catalogue,
    )  # fmt: skip
    await credits.grant(
        actor=None, user_id=user.id, amount=1000, reason="bench", idempotency_key=None, uow=container.uow(),
        publisher=container.publisher, clock=container.clock,
    )  # fmt: skip
    principal = Principal(user.id, Role.USER)
    for i in range(20):
        await generations.generate(
            principal=principal, request=generations.GenerateRequest(model_id=model.id, prompt=f"a harbour at dawn {i}"),
            uow=container.uow(), starter=container.starter, catalogue=container.catalogue, jobs=container.jobs,
            publisher=container.publisher, clock=container.clock, limiter=container.limiter,
            rate=RateRule(10_000, 60), also_limit=[],
        )  # fmt: skip
    return container.tokens.issue_access(user.id, Role.USER).token


async def cpu_per_call(schema: GenhubSchema, query: str, services: Any, token: str, calls: int) -> float:
    started = time.process_time()
    for _ in range(calls):
        context = Context(services=services, credentials=Credentials(token), request_id=uuid.uuid4().hex)
        result = await schema.execute(query, context_value=context)
        assert result.errors is None or query is CANCEL, result.errors
    return (time.process_time() - started) / calls * 1e6


async def main(rounds: int, calls: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            environment="test",
            data_dir=Path(folder),
            seed_demo=False,
            simulated_mode="hang",
            rate_limit_generate=10_000,
        )
        ensure_sqlite_dir(settings.effective_database_url)
        await upgrade(settings.effective_database_url)
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            services = app.state.services
            token = await seed(services.adapters)
            limits = query_limits(settings)
            planned = build_schema(limits=limits, mask_errors=True)
            extended = build_schema(limits=limits, mask_errors=True, extensions=[Passive])
            assert planned.plans is not None and extended.plans is None
            print(f"{'operation':28} {'planned us':>11} {'strawberry us':>14} {'ratio':>6}")
            for name, query in (("me", ME), ("history page (20 items)", HISTORY), ("typed mutation failure", CANCEL)):
                samples: dict[str, list[float]] = {"planned": [], "strawberry": []}
                for schema in (planned, extended):  # warm both caches
                    await cpu_per_call(schema, query, services, token, 20)
                for _ in range(rounds):
                    samples["planned"].append(await cpu_per_call(planned, query, services, token, calls))
                    samples["strawberry"].append(await cpu_per_call(extended, query, services, token, calls))
                p, s = statistics.median(samples["planned"]), statistics.median(samples["strawberry"])
                print(f"{name:28} {p:>11.0f} {s:>14.0f} {s / p:>6.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.calls))
