"""The pieces compiled statements are written with: table aliases and per-statement placeholders,
literals, JSON objects within PostgreSQL's bound on arguments, and each scalar's JSON-ready SQL
(ids, enums, datetimes) as the resolvers serialise it."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence

from infrastructure.db.json_reads.selection import NotCompilable, Selected

#: json_build_object is a function call, bound by PostgreSQL's FUNC_MAX_ARGS: half as many
#: keys as arguments (a key and its value each). Every object a statement builds goes through
#: `json_object`, which refuses more.
MAX_KEYS_PER_OBJECT = 50

Slots = Mapping[str, str]  # a value's name -> its placeholder ($n)
Leaf = Callable[[str], str]  # a table alias -> the field's JSON-ready SQL value


class Aliases:
    """What one statement's parts share while it is written: table aliases t1, t2, ...; the
    placeholder of the viewer of the root being written (`viewer`, "" when the root binds
    none); the placeholders of the fields that take values per request (`nested`, by
    `Selected.slot`)."""

    def __init__(self, nested: Sequence[Slots] = ()) -> None:
        self._n = 0
        self.viewer = ""
        self.nested = nested

    def next(self) -> str:
        self._n += 1
        return f"t{self._n}"

    def slots_of(self, f: Selected) -> Slots:
        """The placeholders of a field that takes values per request (graph/selections.py gave it a slot)."""
        if f.slot < 0 or f.slot >= len(self.nested):
            raise NotCompilable(f"{f.name}: its per-request values are missing")
        return self.nested[f.slot]


#: `object_json` (shapes.py), handed to the parts that build objects inside their own SQL
#: (connections, computed relations) so that they need not import the module that lists them.
ObjectJson = Callable[[str, str, tuple[Selected, ...], Aliases, int], str]


def check_keys(count: int, what: str) -> None:
    """NotCompilable when an object of `count` keys is past MAX_KEYS_PER_OBJECT."""
    if count > MAX_KEYS_PER_OBJECT:
        raise NotCompilable(f"too many keys in one object ({what})")


def json_object(pairs: Sequence[str], what: str) -> str:
    """`json_build_object` of `key, value` pairs (each one SQL text), within MAX_KEYS_PER_OBJECT."""
    check_keys(len(pairs), what)
    return f"json_build_object({', '.join(pairs)})"


def literal(text: str) -> str:
    """A SQL string literal of text we produced or validated (names, aliases, type names)."""
    return "'" + text.replace("'", "''") + "'"


def iso_datetime(column: str) -> str:
    """Python's `datetime.isoformat()` of an aware UTC timestamp, or NULL.

    isoformat() writes no fraction when it is zero: the only ".000000" in the text is that one.
    """
    text = f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US')"
    return f"(replace({text}, '.000000', '') || '+00:00')"


def enum_name(column: str, kind: type[enum.Enum]) -> str:
    """The GraphQL enum value (the member's name) of a stored value."""
    cases = " ".join(f"WHEN {literal(str(m.value))} THEN {literal(m.name)}" for m in kind)
    return f"(CASE {column} {cases} END)"


def column(name: str) -> Leaf:
    return lambda t: f"{t}.{name}"


def uuid_text(name: str) -> Leaf:
    return lambda t: f"{t}.{name}::text"


def timestamp(name: str) -> Leaf:
    return lambda t: iso_datetime(f"{t}.{name}")


def enumerated(name: str, kind: type[enum.Enum]) -> Leaf:
    return lambda t: enum_name(f"{t}.{name}", kind)
