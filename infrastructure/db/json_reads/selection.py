"""What the GraphQL layer hands to the compiler: fields with their response keys, nothing of GraphQL's AST."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Selected:
    """One selected field: `name` in the schema, `key` in the answer (its alias), its sub-selection.

    `args` are the field's coerced argument values; only root fields may have any (a nested
    field with arguments is not compiled).
    """

    name: str
    key: str
    fields: tuple[Selected, ...] = ()
    args: Mapping[str, Any] = field(default_factory=dict)


class NotCompilable(Exception):
    """The selection asks for something the compiler does not describe: use the resolvers."""
