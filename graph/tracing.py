"""GraphQL spans, emitted by the planned path itself (graph/execution.py): one per operation, one per resolver.

The operation span ("GraphQL Query: <name>", kind SERVER) carries the operation text with
its string literals replaced (`redact_literals`); resolver spans ("GraphQL Resolving:
<field>") carry the parent type and the path, never argument values: they hold passwords
and prompts. Fields read from plain attributes and introspection get no span. Parsing and
validation happen once per document, when it is planned, so they have no span of their own.
On only when tracing is (infrastructure/tracing.py).
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator
from typing import Any

from graphql import GraphQLResolveInfo, MiddlewareManager
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Tracer
from strawberry.extensions.tracing.utils import should_skip_tracing

from infrastructure.settings import Settings
from infrastructure.tracing import enabled, redact_literals


class ResolverSpans:
    """graphql-core middleware: a span around each resolver that does some work, child of the operation's."""

    def __init__(self, tracer: Tracer, operation: Span) -> None:
        self.tracer = tracer
        self.parent = trace.set_span_in_context(operation)

    def resolve(self, next_: Callable[..., Any], root: Any, info: GraphQLResolveInfo[Any], **kwargs: Any) -> Any:
        if should_skip_tracing(next_, info):
            return next_(root, info, **kwargs)
        return self.traced(next_, root, info, kwargs)

    async def traced(
        self, next_: Callable[..., Any], root: Any, info: GraphQLResolveInfo[Any], kwargs: dict[str, Any]
    ) -> Any:
        with self.tracer.start_as_current_span(f"GraphQL Resolving: {info.field_name}", context=self.parent) as span:
            span.set_attribute("component", "graphql")
            span.set_attribute("graphql.parentType", info.parent_type.name)
            span.set_attribute("graphql.path", ".".join(map(str, info.path.as_list())))
            result = next_(root, info, **kwargs)
            return await result if inspect.isawaitable(result) else result


class OperationSpans:
    """`OperationTracing` (graph/execution.py) on OpenTelemetry."""

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer

    @contextlib.contextmanager
    def operation(self, query: str, name: str | None) -> Iterator[MiddlewareManager]:
        # Not made the current span: a subscription's run spans the yields of a generator,
        # and a context attached there would leak into its consumer. Resolvers name it as parent.
        span = self.tracer.start_span(f"GraphQL Query: {name}" if name else "GraphQL Query", kind=SpanKind.SERVER)
        span.set_attribute("component", "graphql")
        span.set_attribute("query", redact_literals(query))
        try:
            yield MiddlewareManager(ResolverSpans(self.tracer, span))
        except Exception as error:  # (not a closed subscription's GeneratorExit, nor a cancellation)
            span.record_exception(error)
            raise
        finally:
            span.end()


def operation_tracing(settings: Settings) -> OperationSpans | None:
    """The spans for `build_schema(tracing=...)`; None when tracing is off."""
    return OperationSpans(trace.get_tracer("genhub.graphql")) if enabled(settings) else None
