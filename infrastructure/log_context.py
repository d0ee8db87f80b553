"""What a log record is about: the request, task and generation being handled, and the filter that adds them.

Context variables: the app's request-id middleware binds the request id; the taskiq
middleware (infrastructure/task_log_context.py) binds the task id, task name and
generation id for the run of a task. Tasks spawned while serving a request inherit its id.
"""

from __future__ import annotations

import contextvars
import logging

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("genhub_request_id", default=None)
task_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("genhub_task_id", default=None)
task_name_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("genhub_task_name", default=None)
generation_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("genhub_generation_id", default=None)

#: The record attribute each context variable fills (when the record does not carry it already).
CONTEXT_FIELDS: tuple[tuple[str, contextvars.ContextVar[str | None]], ...] = (
    ("request_id", request_id_var),
    ("task_id", task_id_var),
    ("task_name", task_name_var),
    ("generation_id", generation_id_var),
)


def bind_request_id(request_id: str) -> None:
    """Called once per request by the app; tasks spawned while serving it inherit the value."""
    request_id_var.set(request_id)


class ContextFilter(logging.Filter):
    """Adds the ids of the context (request, task, generation); turns uvicorn's access line into fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in CONTEXT_FIELDS:
            if not hasattr(record, name):
                value = var.get()
                if value is not None:
                    setattr(record, name, value)
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, path, http_version, status = record.args
            record.client = client
            record.method = method
            record.path = path
            record.status = status
            record.http_version = http_version
        return True
