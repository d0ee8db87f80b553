"""Text (and JSON) that can be stored and sent on: no NUL characters, no unpaired surrogates.

PostgreSQL's text and jsonb refuse NUL, and a lone UTF-16 surrogate (which JSON can
spell as an escape, "\\ud800") cannot be encoded as UTF-8 at all; either would fail deep in
the driver instead of as a field error. So would a NaN or an infinity in JSON.
"""

from __future__ import annotations

import math

NUL = "\x00"


def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored as text, or None when it can."""
    if NUL in value:
        return "must not contain NUL characters"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "must be valid Unicode text (no unpaired surrogates)"
    return None


def name_problem(value: str, max_length: int = 200) -> str | None:
    """Why `value` cannot be a display name (blank, too long, or not storable), or None."""
    if not value.strip() or len(value) > max_length:
        return f"must be 1-{max_length} characters"
    return text_problem(value)


def json_problem(value: object) -> str | None:
    """Why a JSON value cannot be stored as jsonb (its strings and keys, non-finite numbers), or None."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if (why := text_problem(item)) is not None:
                return f"{why} (in a string)"
        elif isinstance(item, float):
            if not math.isfinite(item):
                return "must hold only finite numbers"
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
    return None
