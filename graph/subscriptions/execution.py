"""The graphql-core executor the schema uses, minus a memory leak and a reference cycle.

- graphql-core 3.3.2 builds the executor of each subscription event as a shallow ``copy``
  of the subscription's executor, so every event shares one ``_relevant_sub_fields`` memo.
  Its keys are the identities of field lists collected anew for each event, so each event
  adds entries that are never hit again and never dropped: memory grows with every
  delivered event (bench/fanout.py; figures in docs/benchmarks.md). Each event gets a memo of its
  own here; within the event it still serves its purpose (lists of objects).
- Every executor keeps ``async_helpers``, a tuple of two of its own bound methods: a cycle,
  so the executor and everything it reaches (the request's context, variables, collected
  fields) waited for the garbage collector instead of going at once, and
  under load the collector kept rescanning every request in flight (bench/generate.py,
  docs/benchmarks.md). Once a response is
  complete, nothing of the execution runs any more and the helpers are swapped for ones
  that hold no executor.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Any

from graphql import ExecutionResult
from graphql.type.definition import GraphQLResolveInfoHelpers
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext


async def _finished_gather(values: Sequence[Awaitable[Any]]) -> list[Any]:
    raise RuntimeError("this operation's execution has finished")


def _finished_track(values: Sequence[Any]) -> None:
    raise RuntimeError("this operation's execution has finished")


FINISHED = GraphQLResolveInfoHelpers(gather=_finished_gather, track=_finished_track)


class PerEventMemoExecutionContext(StrawberryGraphQLCoreExecutionContext):
    def build_per_event_executor(self, payload: Any) -> Any:
        executor = super().build_per_event_executor(payload)
        executor._relevant_sub_fields = {}
        return executor

    def build_response(self, data: dict[str, Any] | None) -> Any:
        response = super().build_response(data)
        if isinstance(response, ExecutionResult):  # complete (not incremental delivery still in progress)
            self.async_helpers = FINISHED
        return response
