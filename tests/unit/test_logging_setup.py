"""Log formatting: JSON fields for uvicorn's access line and our operation line, terse console lines."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from infrastructure.logging_setup import (
    ConsoleFormatter,
    ContextFilter,
    JsonFormatter,
    configure_logging,
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
    assert config["handlers"]["default"]["filters"] == ["context", "task_runs"]
    assert config["handlers"]["default"]["()"].endswith("StderrHandler")
    assert config["loggers"]["uvicorn.access"]["propagate"] is True


# the logger taskiq's receiver writes "Executing task %s with ID: %s" to (taskiq/receiver/receiver.py)
TASKIQ_RECEIVER = "taskiq.receiver.receiver"


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """configure_logging changes process-wide state: put it back for the other tests."""
    root = logging.getLogger()
    names = ("uvicorn", "uvicorn.error", "uvicorn.access", "taskiq.receiver")
    saved = (root.level, list(root.handlers), {n: logging.getLogger(n).level for n in names})
    try:
        yield
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
        for name, level in saved[2].items():
            logging.getLogger(name).setLevel(level)


def app_settings(tmp_path: Path, log_level: str) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path, log_level=log_level, log_format="console")  # type: ignore[call-arg]


def receiver_record(level: int, msg: str, args: tuple[object, ...] = ()) -> logging.LogRecord:
    return logging.LogRecord(TASKIQ_RECEIVER, level, __file__, 1, msg, args, None)


def shown(record: logging.LogRecord) -> bool:
    """Whether the configured root handler lets `record` through (its logger's level included)."""
    (handler,) = logging.getLogger().handlers
    return logging.getLogger(record.name).isEnabledFor(record.levelno) and bool(handler.filter(record))


@pytest.mark.usefixtures("restored_logging")
def test_taskiq_per_task_lines_stay_out_of_info_but_its_other_lines_do_not(tmp_path: Path) -> None:
    # given the server's logging at the default LOG_LEVEL=INFO
    configure_logging(app_settings(tmp_path, "INFO"))
    # then taskiq's "Executing task" INFO lines are dropped
    assert not shown(receiver_record(logging.INFO, "Executing task %s with ID: %s", ("poll", "id-1")))
    # and the receiver's other lines, its warnings and errors, are kept
    assert shown(receiver_record(logging.INFO, "Listening started."))
    assert shown(receiver_record(logging.ERROR, "Exception found while executing function."))
    # and every other logger (ours, taskiq's broker) still logs at INFO
    assert logging.getLogger("genhub.graphql.operation").isEnabledFor(logging.INFO)
    assert logging.getLogger("taskiq").isEnabledFor(logging.INFO)


@pytest.mark.usefixtures("restored_logging")
def test_taskiq_per_task_lines_show_at_debug(tmp_path: Path) -> None:
    # given LOG_LEVEL=DEBUG, then taskiq's per-task lines are shown
    configure_logging(app_settings(tmp_path, "debug"))
    assert shown(receiver_record(logging.INFO, "Executing task %s with ID: %s", ("poll", "id-1")))


@pytest.mark.usefixtures("restored_logging")
def test_a_stricter_log_level_applies_to_taskiq_too(tmp_path: Path) -> None:
    # given LOG_LEVEL=ERROR, then taskiq's warnings are not let through either
    configure_logging(app_settings(tmp_path, "ERROR"))
    receiver = logging.getLogger(TASKIQ_RECEIVER)
    assert not receiver.isEnabledFor(logging.WARNING) and receiver.isEnabledFor(logging.ERROR)
