"""The FastAPI application: GraphQL, health, file routes; the Services opened in the lifespan.

`build_app` is given everything from outside: the Settings, the broker (with the tasks on
it) and what runs those tasks in this process (embedded mode). The entry point that
supplies them is entrypoints/api.py `create_app`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.telemetry import TelemetryConfig
from taskiq import AsyncBroker

from graph import demo, dev_outbox, files, health, ide
from graph.callbacks import router as callbacks_router
from graph.cors import origin_regex
from graph.http import GraphQLHttp, build_router
from graph.http_endpoint import GraphQLEndpoint
from graph.limits import query_limits
from graph.metrics import install_observability
from graph.persisted_documents import report_trusted_documents
from graph.request_id import RequestIdMiddleware
from graph.schema import build_schema
from graph.security import SecurityHeaders
from graph.sse import EventStreamResponse, GraphQLSse
from graph.tracing import operation_tracing
from graph.websocket import build_ws_router
from infrastructure.bootstrap import Services, open_services
from infrastructure.gc_tuning import frozen_heap, paced_collections
from infrastructure.metrics import observe_collections
from infrastructure.settings import Settings
from infrastructure.tracing import enabled as tracing_enabled

log = logging.getLogger("genhub.app")


NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


TaskRunner = Callable[[Services], AbstractAsyncContextManager[None]]


def build_app(settings: Settings, *, broker: AsyncBroker, run_tasks: TaskRunner) -> FastAPI:
    """`run_tasks(services)` is entered for the app's life (in embedded mode it runs the tasks here)."""
    problems = settings.production_problems()
    if problems:
        raise RuntimeError("genhub refuses to start in production:\n  - " + "\n  - ".join(problems))
    schema = build_schema(
        limits=query_limits(settings),
        mask_errors=settings.is_production,
        tracing=operation_tracing(settings),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_services(settings, broker=broker) as services, run_tasks(services):
            app.state.services = services
            report_trusted_documents(services, schema)
            if not broker.is_worker_process:
                await broker.startup()
            try:
                # Last: what exists now lives as long as the app; later, collections on a
                # clock, and what survives them (open subscriptions) frozen too.
                with frozen_heap():
                    if not settings.gc_pacing:
                        yield
                        return
                    async with paced_collections(
                        reclaim_growth=settings.gc_reclaim_growth, observe=observe_collections
                    ) as pacer:
                        app.state.gc = pacer
                        yield
            finally:
                if not broker.is_worker_process:
                    await broker.shutdown()

    app = FastAPI(
        title="genhub",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        # FastAPI's own HTTP spans and metrics when tracing is on; off, it would still look
        # up the global providers on every request.
        telemetry=None if tracing_enabled(settings) else NO_TELEMETRY,
    )
    app.state.settings = settings
    app.state.schema = schema
    graphql = GraphQLHttp(schema, settings)

    # Middlewares run outermost-last-added: JSON POSTs to /graphql are answered innermost,
    # inside every layer below, but before FastAPI's routing.
    sse = GraphQLSse(graphql)
    app.state.sse = sse
    subscriptions = build_ws_router(schema, settings)
    app.add_middleware(GraphQLEndpoint, handler=graphql, sse=sse, websocket=subscriptions)
    local_origins = origin_regex(settings)  # development: any http://localhost:<port> page (graph/cors.py)
    if settings.cors_origins or local_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_origin_regex=local_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            # Apollo Client sends the apollo-* headers: the upload preflight header and, when the
            # app names itself (clientAwareness), its name and version.
            allow_headers=[
                "Authorization",
                "Content-Type",
                "GraphQL-Require-Preflight",
                "Apollo-Require-Preflight",
                "X-Apollo-Operation-Name",
                "apollographql-client-name",
                "apollographql-client-version",
                "X-Request-ID",
            ],
            expose_headers=["X-Request-ID"],  # so a browser client can quote it when reporting an error
            max_age=600,
        )
    app.add_middleware(SecurityHeaders, production=settings.is_production)
    install_observability(app)
    app.add_middleware(RequestIdMiddleware)  # outermost: every other layer and log line sees the id
    app.include_router(health.router)
    app.include_router(callbacks_router)
    app.include_router(files.router)
    app.include_router(build_router(graphql, lambda request: EventStreamResponse(sse, request)))
    app.include_router(demo.router)
    app.include_router(ide.router)
    if settings.mail_outbox_enabled:
        app.include_router(dev_outbox.router)
    return app
