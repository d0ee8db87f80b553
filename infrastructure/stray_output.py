"""Text written to stdout/stderr outside logging, turned into log records (JSON mode of a process).

A library's `print`, a traceback printed by `multiprocessing` or `traceback.print_exc`, the
"Exception ignored in" of an unraisable error: with LOG_FORMAT=json each complete line
becomes one record of logger `genhub.stdout` or `genhub.stderr`, so every line the process
writes is a JSON object. The handlers write to the stream underneath (`underlying`).
"""

from __future__ import annotations

import io
import logging
import threading
from typing import TextIO


class LineLogger(io.TextIOBase):
    """A text stream whose complete lines are logged; a partial line waits for its end (or a flush)."""

    def __init__(self, logger: logging.Logger, level: int, underlying: TextIO) -> None:
        super().__init__()
        self._logger = logger
        self._level = level
        self.underlying = underlying
        self._pending = ""
        self._lock = threading.RLock()
        self._inside = threading.local()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.underlying, "encoding", None) or "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.underlying.fileno()

    def write(self, text: str) -> int:
        if getattr(self._inside, "active", False):
            # Logging itself writes here (a handler's error report): straight through, never in a loop.
            return self.underlying.write(text)
        with self._lock:
            *complete, self._pending = (self._pending + text).split("\n")
        for line in complete:
            self._log(line)
        return len(text)

    def flush(self) -> None:
        with self._lock:
            rest, self._pending = self._pending, ""
        self._log(rest)

    def _log(self, line: str) -> None:
        line = line.rstrip("\r")
        if not line.strip():
            return
        record = self._logger.makeRecord(self._logger.name, self._level, "(stream)", 0, line, (), None)
        self._inside.active = True
        try:
            # Whatever LOG_LEVEL says: the line was written, so it is shown.
            self._logger.handle(record)
        finally:
            self._inside.active = False


def underlying(stream: TextIO) -> TextIO:
    """The real stream under a `LineLogger` (what a log handler writes to)."""
    return stream.underlying if isinstance(stream, LineLogger) else stream
