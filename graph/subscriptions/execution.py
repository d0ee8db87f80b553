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
  that hold no executor. A subscription's own executor (the one each event's is copied from)
  is finished the same way when its source stream ends or is closed: it held the connection's
  context until a full collection otherwise.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

from graphql import ExecutionResult, OperationType
from graphql.type.definition import GraphQLResolveInfoHelpers
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext


async def _finished_gather(values: Sequence[Awaitable[Any]]) -> list[Any]:
    raise RuntimeError("this operation's execution has finished")


def _finished_track(values: Sequence[Any]) -> None:
    raise RuntimeError("this operation's execution has finished")


FINISHED = GraphQLResolveInfoHelpers(gather=_finished_gather, track=_finished_track)

T = TypeVar("T")


class _FinishingStream(AsyncIterator[T]):
    """`source`, calling `finish` once when it ends or is closed (closing it closes `source`).

    graphql-core maps the stream under `aclosing`, so a subscription that fails or is cancelled closes it
    too. A cancelled wait for the next event is not an end: events may still follow it.
    """

    def __init__(self, source: AsyncIterable[T], finish: Callable[[], None]) -> None:
        self._source = source
        self._iterator = source.__aiter__()
        self._finish: Callable[[], None] | None = finish

    def _finished(self) -> None:
        finish, self._finish = self._finish, None
        if finish is not None:
            finish()

    async def __anext__(self) -> T:
        try:
            return await self._iterator.__anext__()
        except StopAsyncIteration:
            self._finished()
            raise

    async def aclose(self) -> None:
        self._finished()
        for part in (self._iterator, self._source):
            aclose = getattr(part, "aclose", None)
            if aclose is not None:
                await aclose()
                return


class PerEventMemoExecutionContext(StrawberryGraphQLCoreExecutionContext):
    #: True on the copy that runs one subscription event.
    _per_event = False

    def build_per_event_executor(self, payload: Any) -> Any:
        executor = super().build_per_event_executor(payload)
        executor._relevant_sub_fields = {}
        assert isinstance(executor, PerEventMemoExecutionContext)  # a copy of this one
        executor._per_event = True
        return executor

    def cancellable_iterable(self, iterable: AsyncIterable[T]) -> AsyncIterable[T]:
        wrapped = super().cancellable_iterable(iterable)
        if self._per_event or self.operation.operation is not OperationType.SUBSCRIPTION:
            return wrapped  # a list field's async iterable, while the rest of the operation runs on
        # The subscription's own executor: its source event stream (every event's executor is copied from it).
        return _FinishingStream(wrapped, self._finish)

    def _finish(self) -> None:
        self.async_helpers = FINISHED

    def build_response(self, data: dict[str, Any] | None) -> Any:
        response = super().build_response(data)
        if isinstance(response, ExecutionResult):  # complete (not incremental delivery still in progress)
            self.async_helpers = FINISHED
        return response
