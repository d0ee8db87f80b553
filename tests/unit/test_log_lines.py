"""A record is one JSON line whatever its fields hold; stray output and task ids reach the same lines."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from taskiq import TaskiqMessage, TaskiqResult

from infrastructure.log_context import ContextFilter, generation_id_var, request_id_var, task_id_var
from infrastructure.logging_setup import CORE_KEYS, JsonFormatter, configure_process_logging
from infrastructure.settings import Settings
from infrastructure.stray_output import LineLogger
from infrastructure.task_log_context import MAX_FIELD_CHARS, TaskLogContextMiddleware

# Any text, lone surrogates and every character a line splitter breaks on included.
HOSTILE = st.text(
    alphabet=st.one_of(
        st.characters(codec=None, exclude_categories=()),
        st.sampled_from(["\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", '"', "\\"]),
        st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
    ),
    max_size=60,
)


def lines_of(text: str) -> list[str]:
    """How strict and lenient readers split a log: on every Unicode line boundary."""
    return text.splitlines()


def written(formatted: str) -> str:
    """What a reader of stderr gets (Python writes stderr with backslashreplace)."""
    return formatted.encode("utf-8", "backslashreplace").decode("utf-8")


@settings(max_examples=300, deadline=None)
@given(message=HOSTILE, request_id=HOSTILE, generation_id=HOSTILE, error=HOSTILE)
def test_hostile_text_in_any_field_stays_one_json_line(
    message: str, request_id: str, generation_id: str, error: str
) -> None:
    # given a record whose message, context ids and exception text are attacker-chosen
    try:
        raise ValueError("x" + error)
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("genhub.tasks", logging.ERROR, __file__, 1, "got %s", (message,), exc_info)
    tokens = (request_id_var.set(request_id), generation_id_var.set(generation_id))
    try:
        ContextFilter().filter(record)
    finally:
        generation_id_var.reset(tokens[1])
        request_id_var.reset(tokens[0])
    # when it is formatted and written
    line = written(JsonFormatter().format(record))
    # then it is one line on every reader's terms, and its fields come back exactly
    assert lines_of(line) == [line]
    payload = json.loads(line)
    assert payload["msg"] == f"got {message}"
    assert payload["request_id"] == request_id
    assert payload["generation_id"] == generation_id
    assert payload["exc_type"] == "ValueError"
    assert payload["exc"].endswith(f"ValueError: x{error}")
    # and nothing else was forged: the keys are the record's own
    assert set(payload) == {"ts", "level", "logger", "msg", "exc", "exc_type", "request_id", "generation_id"}


def test_a_field_never_replaces_a_core_key() -> None:
    record = logging.LogRecord("genhub.x", logging.INFO, __file__, 1, "real", None, None)
    for key in CORE_KEYS:
        if key != "msg":  # the record's own message attribute
            setattr(record, key, "forged")
    payload = json.loads(JsonFormatter().format(record))
    assert (payload["msg"], payload["level"], payload["logger"]) == ("real", "info", "genhub.x")
    assert "exc" not in payload and "stack" not in payload


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def collected() -> Iterator[tuple[logging.Logger, Collect]]:
    logger = logging.getLogger("genhub.test-stream")
    handler = Collect()
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.CRITICAL)  # a stray line is shown whatever the level
    try:
        yield logger, handler
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
        logger.setLevel(logging.NOTSET)


def test_stray_lines_become_one_record_each(collected: tuple[logging.Logger, Collect]) -> None:
    logger, handler = collected
    stream = LineLogger(logger, logging.INFO, io.StringIO())
    # given a partial line, then its end with a second line and a blank one
    stream.write("Traceback (most recent call last):")
    assert handler.records == []
    stream.write('\n  File "x.py", line 1\r\n\n100% done')
    # then complete lines are records (blank ones dropped), the partial one waits for a flush
    assert [r.getMessage() for r in handler.records] == ["Traceback (most recent call last):", '  File "x.py", line 1']
    stream.flush()
    assert handler.records[-1].getMessage() == "100% done"
    assert handler.records[-1].levelno == logging.INFO


def test_a_failing_handler_does_not_loop_through_the_stream() -> None:
    # given a handler whose errors logging reports on the very stream being logged
    underneath = io.StringIO()
    logger = logging.getLogger("genhub.test-loop")
    logger.propagate = False

    class Broken(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            stream.write("handler failed\n")

    logger.addHandler(Broken())
    stream = LineLogger(logger, logging.INFO, underneath)
    try:
        stream.write("one line\n")
    finally:
        logger.handlers.clear()
        logger.propagate = True
    # then the report goes straight to the stream underneath, once
    assert underneath.getvalue() == "handler failed\n"


def message(**kwargs: Any) -> TaskiqMessage:
    return TaskiqMessage(task_id="t-1", task_name="submit_generation", labels={}, args=[], kwargs=kwargs)


def test_task_ids_are_bound_while_a_task_runs_and_put_back_after() -> None:
    middleware = TaskLogContextMiddleware()
    hostile = "g" * (MAX_FIELD_CHARS + 50)
    msg = middleware.pre_execute(message(generation_id=hostile))
    record = logging.LogRecord("taskiq.receiver.receiver", logging.ERROR, __file__, 1, "failed", None, None)
    ContextFilter().filter(record)
    assert (record.task_id, record.task_name) == ("t-1", "submit_generation")  # type: ignore[attr-defined]
    assert record.generation_id == hostile[:MAX_FIELD_CHARS]  # type: ignore[attr-defined]
    middleware.post_execute(msg, TaskiqResult(is_err=False, return_value=None, execution_time=0.0))
    assert task_id_var.get() is None and generation_id_var.get() is None


def test_a_task_about_no_generation_has_no_generation_id() -> None:
    middleware = TaskLogContextMiddleware()
    msg = middleware.pre_execute(message())
    try:
        record = logging.LogRecord("genhub.tasks", logging.INFO, __file__, 1, "swept", None, None)
        ContextFilter().filter(record)
        assert not hasattr(record, "generation_id") and record.task_id == "t-1"  # type: ignore[attr-defined]
    finally:
        middleware.post_execute(msg, TaskiqResult(is_err=False, return_value=None, execution_time=0.0))


@pytest.fixture
def process_state() -> Iterator[None]:
    """configure_process_logging changes process-wide state: put all of it back."""
    root = logging.getLogger()
    saved = (root.level, list(root.handlers), sys.stdout, sys.stderr, sys.excepthook, threading.excepthook)
    try:
        yield
    finally:
        logging.captureWarnings(False)
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
        sys.stdout, sys.stderr, sys.excepthook, threading.excepthook = saved[2:]


@pytest.mark.usefixtures("process_state")
def test_a_json_process_writes_warnings_uncaught_errors_and_prints_as_json(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # given a process set up for JSON lines
    configure_process_logging(
        Settings(_env_file=None, data_dir=tmp_path, log_format="json", log_level="WARNING")  # type: ignore[call-arg]
    )
    # when a library prints, warns, and an exception escapes (main thread and another)
    print("plain text\nsecond line")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        logging.captureWarnings(True)
        warnings.warn("old api", UserWarning, stacklevel=1)
    try:
        raise RuntimeError("escaped")
    except RuntimeError:
        sys.excepthook(*sys.exc_info())  # type: ignore[arg-type]
    thread = threading.Thread(target=lambda: 1 / 0, name="helper")
    thread.start()
    thread.join()
    loop = asyncio.new_event_loop()
    try:  # what asyncio reports for a failed task nobody awaited
        loop.call_exception_handler({"message": "Task exception was never retrieved", "exception": KeyError("k")})
    finally:
        loop.close()
    sys.stdout.flush()
    out, err = capfd.readouterr()
    # then stdout is empty and every line on stderr is a JSON object
    assert out == ""
    payloads = [json.loads(line) for line in err.splitlines() if line.strip()]
    by_logger = {p["logger"]: p for p in payloads}
    assert [p["msg"] for p in payloads if p["logger"] == "genhub.stdout"] == ["plain text", "second line"]
    assert "old api" in by_logger["py.warnings"]["msg"]
    uncaught = [p for p in payloads if p["logger"] == "genhub.uncaught"]
    assert [p["exc_type"] for p in uncaught] == ["RuntimeError", "ZeroDivisionError"]
    assert "Traceback" in uncaught[0]["exc"] and "helper" in uncaught[1]["msg"]
    (unretrieved,) = [p for p in payloads if p["logger"] == "asyncio"]
    assert unretrieved["msg"] == "Task exception was never retrieved" and unretrieved["exc_type"] == "KeyError"
