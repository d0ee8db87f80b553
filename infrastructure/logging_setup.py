"""Logging: JSON lines in production, readable console lines in development; uvicorn uses the same."""

from __future__ import annotations

import json
import logging
import logging.config
import sys
from datetime import UTC, datetime
from typing import Any

from infrastructure.settings import Settings

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}


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


class ConsoleFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", datefmt="%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}
        return text + ("  " + " ".join(f"{k}={v}" for k, v in extras.items()) if extras else "")


def use_json(settings: Settings) -> bool:
    if settings.log_format == "auto":
        return settings.is_production or not sys.stderr.isatty()
    return settings.log_format == "json"


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
        "handlers": {
            "default": {"class": "logging.StreamHandler", "formatter": "default", "stream": "ext://sys.stderr"}
        },
        "root": {"handlers": ["default"], "level": settings.log_level.upper()},
        "loggers": {
            "uvicorn": {"level": settings.log_level.upper(), "handlers": [], "propagate": True},
            "uvicorn.error": {"level": settings.log_level.upper(), "handlers": [], "propagate": True},
            "uvicorn.access": {"level": settings.log_level.upper(), "handlers": [], "propagate": True},
        },
    }


def configure_logging(settings: Settings) -> None:
    logging.config.dictConfig(uvicorn_log_config(settings))
