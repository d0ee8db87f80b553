"""Logging: JSON lines in production, readable console lines in development; uvicorn uses the same.

The request id of the HTTP request being served (a context variable, set by the app's
request-id middleware) is added to every record, uvicorn's access lines included.
"""

from __future__ import annotations

import contextvars
import json
import logging
import logging.config
import sys
from datetime import UTC, datetime
from typing import Any

from infrastructure.settings import Settings

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("genhub_request_id", default=None)
operation_log = logging.getLogger("genhub.graphql.operation")


def bind_request_id(request_id: str) -> None:
    """Called once per request by the app; tasks spawned while serving it inherit the value."""
    request_id_var.set(request_id)


#: ERROR records (with a traceback) that uvicorn writes for what a client does at will: the
#: websockets-sansio protocol logs an invalid UTF-8 text frame so before closing with 1007.
CLIENT_CAUSED = frozenset({"Invalid UTF-8 sequence received from client."})


class ClientCausedFilter(logging.Filter):
    """On uvicorn's logger: a client's malformed frame is a WARNING without a traceback, not a server error."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.WARNING and record.msg in CLIENT_CAUSED:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info, record.exc_text = None, None
        return True


class ContextFilter(logging.Filter):
    """Adds `request_id` from the context; turns uvicorn's access line into fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            request_id = request_id_var.get()
            if request_id is not None:
                record.request_id = request_id
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, path, http_version, status = record.args
            record.client = client
            record.method = method
            record.path = path
            record.status = status
            record.http_version = http_version
        return True


def log_operation(
    *,
    request_id: str,
    user_id: str | None,
    operation_name: str | None,
    duration_ms: float,
    outcome: str,
    error_codes: list[str] | None = None,
) -> None:
    """One line per GraphQL operation (HTTP and WebSocket alike)."""
    operation_log.info(
        "graphql %s %s %.1fms",
        operation_name or "(unnamed operation)",
        outcome,
        duration_ms,
        extra={
            "request_id": request_id,
            "user_id": user_id,
            "operation_name": operation_name,
            "duration_ms": duration_ms,
            "outcome": outcome,
            "error_codes": error_codes or [],
        },
    )


class JsonFormatter(logging.Formatter):
    """One JSON object per line; `extra={...}` fields (request_id, user_id, ...) become keys."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str, ensure_ascii=False)


_CONSOLE_TERSE = ("uvicorn.access", operation_log.name)


class ConsoleFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", datefmt="%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}
        if record.name in _CONSOLE_TERSE:  # the message already says the rest
            extras = {k: v for k, v in extras.items() if k in ("request_id", "user_id") and v}
        return text + ("  " + " ".join(f"{k}={v}" for k, v in extras.items()) if extras else "")


def use_json(settings: Settings) -> bool:
    if settings.log_format == "auto":
        return settings.is_production or not sys.stderr.isatty()
    return settings.log_format == "json"


# taskiq logs "Executing task ..." at INFO for every run of every task: with the scheduled
# sweeps running in-process (embedded mode) that is a third of all lines. Its warnings and
# errors (a failed task, a result that cannot be stored) still come through.
TASK_RUN_LOGGER = "taskiq.receiver"


def task_run_level(settings: Settings) -> str:
    """WARNING for taskiq's per-task lines unless LOG_LEVEL asks for DEBUG (or is stricter)."""
    level = settings.log_level.upper()
    if level == "DEBUG":
        return level
    configured = logging.getLevelName(level)
    return level if isinstance(configured, int) and configured > logging.WARNING else "WARNING"


def uvicorn_log_config(settings: Settings) -> dict[str, Any]:
    formatter = (
        "infrastructure.logging_setup.JsonFormatter"
        if use_json(settings)
        else "infrastructure.logging_setup.ConsoleFormatter"
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": {"()": formatter}},
        "filters": {
            "context": {"()": "infrastructure.logging_setup.ContextFilter"},
            "client_caused": {"()": "infrastructure.logging_setup.ClientCausedFilter"},
        },
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "filters": ["context"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["default"], "level": settings.log_level.upper()},
        "loggers": {
            "uvicorn": {"level": settings.log_level.upper(), "handlers": [], "propagate": True},
            "uvicorn.error": {
                "level": settings.log_level.upper(),
                "handlers": [],
                "propagate": True,
                "filters": ["client_caused"],
            },
            "uvicorn.access": {"level": settings.log_level.upper(), "handlers": [], "propagate": True},
            TASK_RUN_LOGGER: {"level": task_run_level(settings), "handlers": [], "propagate": True},
        },
    }


def configure_logging(settings: Settings) -> None:
    logging.config.dictConfig(uvicorn_log_config(settings))
