"""Log formatting: JSON fields for uvicorn's access line and our operation line, terse console lines."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from infrastructure.logging_setup import (
    ConsoleFormatter,
    ContextFilter,
    JsonFormatter,
    request_id_var,
    uvicorn_log_config,
)
from infrastructure.settings import Settings


def access_record() -> logging.LogRecord:
    # exactly how uvicorn logs an access line
    return logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "POST", "/graphql", "1.1", 200),
        None,
    )


def test_access_lines_become_json_fields_with_the_request_id() -> None:
    record = access_record()
    token = request_id_var.set("rid-42")
    try:
        assert ContextFilter().filter(record)
    finally:
        request_id_var.reset(token)
    payload = json.loads(JsonFormatter().format(record))
    assert payload["logger"] == "uvicorn.access"
    assert payload["msg"] == '127.0.0.1:5000 - "POST /graphql HTTP/1.1" 200'
    assert payload["method"] == "POST"
    assert payload["path"] == "/graphql"
    assert payload["status"] == 200
    assert payload["request_id"] == "rid-42"


def test_an_explicit_request_id_wins_over_the_context() -> None:
    record = logging.LogRecord("genhub.graphql", logging.ERROR, __file__, 1, "boom", None, None)
    record.request_id = "explicit"
    token = request_id_var.set("ambient")
    try:
        ContextFilter().filter(record)
    finally:
        request_id_var.reset(token)
    assert json.loads(JsonFormatter().format(record))["request_id"] == "explicit"


def test_console_access_lines_stay_readable() -> None:
    record = access_record()
    token = request_id_var.set("rid-7")
    try:
        ContextFilter().filter(record)
    finally:
        request_id_var.reset(token)
    line = ConsoleFormatter().format(record)
    assert line.endswith('"POST /graphql HTTP/1.1" 200  request_id=rid-7')


def test_uvicorn_config_routes_access_logs_through_the_filter(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, environment="production", data_dir=tmp_path, log_format="auto")  # type: ignore[call-arg]
    config = uvicorn_log_config(settings)
    assert config["formatters"]["default"]["()"].endswith("JsonFormatter")
    assert config["handlers"]["default"]["filters"] == ["context"]
    assert config["loggers"]["uvicorn.access"]["propagate"] is True
