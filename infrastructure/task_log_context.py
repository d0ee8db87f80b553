"""A taskiq middleware that binds the running task's ids for logging (infrastructure/log_context.py).

Every record written while a task runs carries `task_id`, `task_name` and, for tasks about
one generation, `generation_id`: taskiq's own "Exception found while executing function"
with its traceback included. Each message is handled in an asyncio task of its own, so the
values stay with that run; they are put back after it for a task awaited in place (tests).
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Any

from taskiq import TaskiqMessage, TaskiqMiddleware, TaskiqResult

from infrastructure.log_context import generation_id_var, task_id_var, task_name_var

#: Values come from the message, which anyone able to write to the queue can shape: a log
#: field holds at most this many characters of one.
MAX_FIELD_CHARS = 100

Tokens = tuple[contextvars.Token[str | None], ...]


def _bounded(value: Any) -> str | None:
    if value is None:
        return None
    return str(value)[:MAX_FIELD_CHARS]


class TaskLogContextMiddleware(TaskiqMiddleware):
    """Sets the task's ids in the logging context before it runs, resets them after."""

    def __init__(self) -> None:
        super().__init__()
        self._tokens: dict[str, Tokens] = {}

    def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        generation_id = message.kwargs.get("generation_id") if isinstance(message.kwargs, dict) else None
        self._tokens[message.task_id] = (
            task_id_var.set(_bounded(message.task_id)),
            task_name_var.set(_bounded(message.task_name)),
            generation_id_var.set(_bounded(generation_id)),
        )
        return message

    def post_execute(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        tokens = self._tokens.pop(message.task_id, None)
        if tokens is None:
            return
        for var, token in zip((task_id_var, task_name_var, generation_id_var), tokens, strict=True):
            # A token of another context (or used already) ends with that context: nothing to put back.
            with contextlib.suppress(ValueError, RuntimeError):
                var.reset(token)
