"""The operation-plan path against strawberry's own: the same operations, in process, interleaved.

genhub runs every operation from cached operation plans (graph/execution.py). This measures
that path alone — no HTTP, no network — on one in-process app (embedded defaults: SQLite,
in-memory queue), against plain `strawberry.Schema.execute` on the same types with
strawberry's own pieces (MaxTokensLimiter, ParserCache and ValidationCache with a bounded
size, MaskErrors; none of our document limits), and the planned path with tracing on (an
SDK tracer provider that exports nowhere: the spans' own cost). Same context and container,
same operations, interleaved round by round. It prints CPU per operation (median over
rounds) and strawberry's time over the plan path's, for:

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

import strawberry  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from strawberry.extensions import MaskErrors, MaxTokensLimiter, ParserCache, ValidationCache  # noqa: E402

from domain.catalogue import ModelKind  # noqa: E402
from domain.use_cases import catalogue, credits, generations  # noqa: E402
from domain.use_cases.auth import ensure_user  # noqa: E402
from domain.use_cases.rate_limits import RateRule  # noqa: E402
from domain.users import Principal, Role  # noqa: E402
from entrypoints.api import create_app  # noqa: E402
from graph.boundary import guard_schema  # noqa: E402
from graph.context import Context, Credentials  # noqa: E402
from graph.limits import CACHE_SIZE, query_limits  # noqa: E402
from graph.schema import SUBSCRIPTIONS, Mutation, Query, build_schema  # noqa: E402
from graph.subscriptions.execution import PerEventMemoExecutionContext  # noqa: E402
from graph.tracing import OperationSpans  # noqa: E402
from infrastructure.migrations.runner import ensure_sqlite_dir, upgrade  # noqa: E402
from infrastructure.settings import Settings  # noqa: E402

ME = "query Me { me { id email role } }"
HISTORY = """query History {
  generations(first: 20) { edges { cursor node { id status progress prompt createdAt
    model { id slug name } outputs { id kind contentType size } } } pageInfo { hasNextPage endCursor } }
}"""
CANCEL = 'mutation Cancel { cancelGeneration(id: "00000000-0000-0000-0000-000000000000") { __typename } }'


def strawberry_schema(max_tokens: int) -> strawberry.Schema:
    """The same types on plain strawberry, with its own caches and masking (and our argument boundary)."""
    schema = strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=strawberry.tools.merge_types("Subscription", SUBSCRIPTIONS),
        extensions=[
            lambda: MaxTokensLimiter(max_token_count=max_tokens),
            lambda: ParserCache(maxsize=CACHE_SIZE),
            lambda: ValidationCache(maxsize=CACHE_SIZE),
            MaskErrors,
        ],
        execution_context_class=PerEventMemoExecutionContext,
    )
    guard_schema(schema.graphql_schema)
    return schema


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


async def cpu_per_call(schema: strawberry.Schema, query: str, services: Any, token: str, calls: int) -> float:
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
            schemas: dict[str, strawberry.Schema] = {
                "planned": build_schema(limits=limits, mask_errors=True),
                "strawberry": strawberry_schema(limits.max_tokens),
                "traced": build_schema(
                    limits=limits, mask_errors=True, tracing=OperationSpans(TracerProvider().get_tracer("bench"))
                ),
            }
            print(f"{'operation':28} {'planned us':>11} {'strawberry us':>14} {'ratio':>6} {'traced us':>10}")
            for name, query in (("me", ME), ("history page (20 items)", HISTORY), ("typed mutation failure", CANCEL)):
                samples: dict[str, list[float]] = {key: [] for key in schemas}
                for schema in schemas.values():  # warm every cache
                    await cpu_per_call(schema, query, services, token, 20)
                for _ in range(rounds):
                    for key, schema in schemas.items():
                        samples[key].append(await cpu_per_call(schema, query, services, token, calls))
                p, s, t = (statistics.median(samples[key]) for key in ("planned", "strawberry", "traced"))
                print(f"{name:28} {p:>11.0f} {s:>14.0f} {s / p:>6.2f} {t:>10.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.calls))
