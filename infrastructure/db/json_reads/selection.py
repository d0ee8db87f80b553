"""What the GraphQL layer hands to the compiler: fields with their response keys, nothing of GraphQL's AST."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Selected:
    """One selected field: `name` in the schema, `key` in the answer (its alias), its sub-selection.

    `args` are the field's coerced argument values; only root fields carry them here. A nested
    field that takes values per request (its arguments, or the clock) has a `slot` instead:
    the index of its placeholders among the statement's nested ones (-1: none).
    """

    name: str
    key: str
    fields: tuple[Selected, ...] = ()
    args: Mapping[str, Any] = field(default_factory=dict)
    slot: int = -1


class NotCompilable(Exception):
    """The selection asks for something the compiler does not describe: use the resolvers."""
