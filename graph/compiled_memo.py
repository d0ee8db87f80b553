"""What the compiled path remembers about one document (graph/compiled_reads.py), within a bound.

A client varies what a document compiles to through its variables: the values of the
variables its directives read (one selection each) and which optional arguments are present
(one statement text each, up to `roots.MAX_STATEMENT_CHARS`). Every entry, of either kind,
goes through `put`, which keeps at most `max_entries` of them and at most `max_chars` of
statement text, dropping the least recently used first. A request whose entry was dropped
compiles it again; nothing a client sends can grow the memo past its bound.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

#: Entries of one document's memo (selections, statements and refusals together).
MEMO_SIZE = 64
#: Characters of statement text one document's memo keeps (a few statements of the largest size).
MEMO_CHARS = 256 * 1024


class CompiledMemo:
    """A bounded, least-recently-used memo of one document's compiled selections and statements."""

    __slots__ = ("_chars", "_entries", "max_chars", "max_entries")

    def __init__(self, *, max_entries: int = MEMO_SIZE, max_chars: int = MEMO_CHARS) -> None:
        self.max_entries = max_entries
        self.max_chars = max_chars
        self._entries: OrderedDict[Hashable, object] = OrderedDict()
        self._chars = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    @property
    def chars(self) -> int:
        """Characters of statement text held now."""
        return self._chars

    def get(self, key: Hashable, default: object = None) -> object:
        if key not in self._entries:
            return default
        self._entries.move_to_end(key)
        return self._entries[key]

    def put(self, key: Hashable, value: object) -> None:
        """Keep `value` (text counts by its length), dropping the least recently used past the bounds."""
        self._discard(key)
        size = len(value) if isinstance(value, str) else 0
        if size > self.max_chars:
            return  # larger than the whole memo: computed again when asked for
        self._entries[key] = value
        self._chars += size
        while len(self._entries) > self.max_entries or self._chars > self.max_chars:
            self._discard(next(iter(self._entries)))

    def _discard(self, key: Hashable) -> None:
        if key in self._entries:
            value = self._entries.pop(key)
            self._chars -= len(value) if isinstance(value, str) else 0
