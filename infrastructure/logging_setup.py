"""Logging for every process (serve, worker, scheduler, migrate): JSON lines or readable console lines.

`configure_logging` is the one set-up; uvicorn is handed the same (`uvicorn_log_config`).
`configure_process_logging` adds, for a long-running command, what reaches stdout/stderr
outside logging: warnings, uncaught exceptions, and in JSON mode every stray line
(infrastructure/stray_output.py), so each line the process writes is one JSON object.
The ids of the request or task being handled are added to every record (log_context.py).
"""

from __future__ import annotations

import json
import logging
import logging.config
import sys
import threading
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TextIO

from infrastructure.log_context import ContextFilter, bind_request_id, request_id_var
from infrastructure.settings import Settings
from infrastructure.stray_output import LineLogger, underlying

__all__ = [
    "ConsoleFormatter",
    "ContextFilter",
    "JsonFormatter",
    "bind_request_id",
    "configure_logging",
    "configure_process_logging",
    "log_operation",
    "request_id_var",
    "uvicorn_log_config",
]

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}
operation_log = logging.getLogger("genhub.graphql.operation")


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


#: Characters that JSON (without ensure_ascii) leaves as they are but that line splitters
#: (Python's `str.splitlines`, JavaScript's line terminators) take for the end of a line: a
#: field holding one must not cut the record in two for whoever reads the log. Lone
#: surrogates are escaped too: written raw, they are not UTF-8 (a strict reader drops the line).
_ESCAPED = [0x85, 0x2028, 0x2029, *range(0xD800, 0xE000)]
_LINE_BREAK_TABLE = str.maketrans({chr(c): f"\\u{c:04x}" for c in _ESCAPED})
#: The keys every line has; a field of a record never replaces one of them.
CORE_KEYS = ("ts", "level", "logger", "msg", "exc", "exc_type", "stack")


class JsonFormatter(logging.Formatter):
    """One JSON object per line; `extra={...}` fields (request_id, task_id, ...) become keys.

    An exception is one field (`exc`, the whole traceback, with `exc_type`), never more lines.
    """

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
            if record.exc_info[0] is not None:
                payload["exc_type"] = record.exc_info[0].__name__
        elif record.exc_text:
            payload["exc"] = record.exc_text
        if record.stack_info:
            payload["stack"] = self.formatStack(record.stack_info)
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and key not in CORE_KEYS:
                payload[key] = value
        return json.dumps(payload, default=str, ensure_ascii=False).translate(_LINE_BREAK_TABLE)


_CONSOLE_TERSE = ("uvicorn.access", operation_log.name, "genhub.db.budget")


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
# sweeps running in-process (embedded mode) that is a third of all lines. Only that line is
# dropped (unless LOG_LEVEL=DEBUG): the receiver's other lines ("Listening started.", a failed
# task, a result that cannot be stored) come through at LOG_LEVEL.
TASK_RUN_LOGGER = "taskiq.receiver"
TASK_RUN_MESSAGE = "Executing task %s with ID: %s"


class TaskRunLinesFilter(logging.Filter):
    """Drops taskiq's per-run INFO line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.levelno == logging.INFO
            and record.msg == TASK_RUN_MESSAGE
            and record.name.startswith(TASK_RUN_LOGGER)
        )


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The process's log handler: writes to the real stderr, under a `LineLogger` if one is installed."""

    def __init__(self) -> None:
        super().__init__(underlying(sys.stderr))


def taskiq_log_level(settings: Settings) -> str:
    """LOG_LEVEL as taskiq's command line takes it (its level for the `taskiq` loggers)."""
    level = settings.log_level.upper()
    return level if level in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL") else "INFO"


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
            "task_runs": {"()": "infrastructure.logging_setup.TaskRunLinesFilter"},
        },
        "handlers": {
            "default": {
                "()": "infrastructure.logging_setup.StderrHandler",
                "formatter": "default",
                "filters": ["context"] if settings.log_level.upper() == "DEBUG" else ["context", "task_runs"],
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
        },
    }


def configure_logging(settings: Settings) -> None:
    logging.config.dictConfig(uvicorn_log_config(settings))


uncaught_log = logging.getLogger("genhub.uncaught")


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, exc, tb)
        return
    uncaught_log.critical("uncaught exception: %s", kind.__name__, exc_info=(kind, exc, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None or issubclass(args.exc_type, SystemExit):
        return
    name = args.thread.name if args.thread is not None else "?"
    uncaught_log.error(
        "uncaught exception in thread %s", name, exc_info=(args.exc_type, args.exc_value, args.exc_traceback)
    )


def _route_stray_output() -> None:
    """stdout and stderr become `LineLogger`s (once per process; the handlers keep the real streams)."""
    streams: dict[str, tuple[TextIO, int]] = {
        "stdout": (sys.stdout, logging.INFO),
        "stderr": (sys.stderr, logging.WARNING),
    }
    for name, (stream, level) in streams.items():
        if not isinstance(stream, LineLogger):
            setattr(sys, name, LineLogger(logging.getLogger(f"genhub.{name}"), level, stream))


def configure_process_logging(settings: Settings) -> None:
    """The set-up of a long-running command (serve, worker, scheduler, migrate), before it starts.

    Python warnings and uncaught exceptions (main thread and others) become records; with
    JSON output, so does every other line written to stdout or stderr.
    """
    configure_logging(settings)
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread
    if use_json(settings):
        _route_stray_output()
