"""Values a compiled statement cannot compute, marked in its JSON for a second step in Python.

A mark is a JSON string that starts with a control character and a nonce drawn per process,
so no stored text can pose as one (PostgreSQL writes the control character as `\\u0001` or
`\\u0002`; stored text that holds those characters still lacks the nonce):

- a cursor, `\\u0001<nonce>:<micros>:<id>`, signed with the cursor codec (runner.py);
- an asset's download URL, `\\u0002<nonce>:<seconds>:<storage key>`, signed through the
  storage port in one batch for the whole answer (graph/compiled_reads.py), as the
  resolver signs it.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping

CURSOR_NONCE = secrets.token_hex(8)
URL_NONCE = secrets.token_hex(8)

CURSOR_MARK = re.compile(r'"\\u0001' + CURSOR_NONCE + r':(\d+):([0-9a-f-]{36})"')
URL_MARK = re.compile(r'"\\u0002' + URL_NONCE + r':(\d+):((?:[^"\\]|\\.)*)"')

#: A URL's signing request: the storage key and the seconds it stays valid.
UrlRequest = tuple[str, int]


def cursor_marker(t: str) -> str:
    micros = f"(extract(epoch from {t}.created_at) * 1000000)::bigint"
    return f"(chr(1) || '{CURSOR_NONCE}:' || {micros} || ':' || {t}.id::text)"


def url_marker(key_column: str, seconds: str) -> str:
    """The mark of a signed URL of `key_column` valid for `seconds` (a placeholder)."""
    return f"(chr(2) || '{URL_NONCE}:' || {seconds}::integer || ':' || {key_column})"


def url_requests(text: str) -> list[UrlRequest]:
    """The URLs the answer asks for, each once, in order of appearance."""
    if "\\u0002" not in text:
        return []
    found: dict[UrlRequest, None] = {}
    for match in URL_MARK.finditer(text):
        found[(json.loads('"' + match.group(2) + '"'), int(match.group(1)))] = None
    return list(found)


def with_urls(text: str, urls: Mapping[UrlRequest, str]) -> str:
    """The answer with each URL mark replaced by its signed URL (a JSON string)."""

    def signed(match: re.Match[str]) -> str:
        return json.dumps(urls[(json.loads('"' + match.group(2) + '"'), int(match.group(1)))])

    return URL_MARK.sub(signed, text)
