"""docs/schema.md from schema.graphql: every operation and type with its description.

Regenerate after `genhub export-schema` with `python -m graph.schema_docs` (add `--check`
to fail when the committed file is stale); tests/unit/test_schema_docs.py checks it in CI.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    build_schema,
    get_named_type,
    print_ast,
)
from graphql.type import GraphQLType

SCHEMA_PATH = Path("schema.graphql")
DOCS_PATH = Path("docs/schema.md")
REGENERATE = "python -m graph.schema_docs"
BUILT_IN_SCALARS = frozenset({"String", "Int", "Float", "Boolean", "ID"})
HEADER = f"""# genhub GraphQL API reference

<!-- Generated from schema.graphql by `{REGENERATE}`: do not edit by hand. -->

Queries and mutations: `POST /graphql` (or `GET` for queries). Subscriptions: a WebSocket
to `/graphql` speaking `graphql-transport-ws` (or legacy `graphql-ws`), with
`{{"Authorization": "Bearer <token>"}}` as the `connection_init` payload. Expected
failures are union members implementing `Error`; see [clients.md](clients.md) for working
examples and [schema.graphql](../schema.graphql) for the SDL.
"""


def _anchor(name: str) -> str:
    return name.lower()  # GitHub's heading anchors: type names are plain identifiers


def _type_ref(gql_type: GraphQLType) -> str:
    named = get_named_type(gql_type)
    text = f"`{gql_type}`"
    return text if named is None or named.name in BUILT_IN_SCALARS else f"[{text}](#{_anchor(named.name)})"


def _cell(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


def _default(arg: GraphQLArgument | GraphQLInputField) -> str:
    node = arg.ast_node
    if node is None or node.default_value is None:
        return ""
    printed = print_ast(node.default_value)
    return "" if printed == "null" else f"`{printed}`"  # a null default says nothing a nullable type does not


def _arguments(args: dict[str, GraphQLArgument]) -> list[str]:
    if not args:
        return []
    described = any(a.description for a in args.values())
    rows = [
        "| argument | type | default |" + (" description |" if described else ""),
        "|---|---|---|" + ("---|" if described else ""),
    ]
    for name, arg in args.items():
        row = f"| `{name}` | {_type_ref(arg.type)} | {_default(arg)} |"
        rows.append(row + (f" {_cell(arg.description)} |" if described else ""))
    return [*rows, ""]


def _members(gql_type: GraphQLType) -> str:
    named = get_named_type(gql_type)
    return " | ".join(_type_ref(m) for m in named.types) if isinstance(named, GraphQLUnionType) else ""


def _operation(root: str, name: str, field: GraphQLField) -> list[str]:
    signature = ", ".join(f"{n}: {a.type}" for n, a in field.args.items())
    # "Query.generation", not "generation": its anchor must not shadow the type Generation's.
    lines = [f"### `{root}.{name}`", "", f"`{name}{f'({signature})' if signature else ''}: {field.type}`", ""]
    if field.description:
        lines += [field.description.strip(), ""]
    if field.deprecation_reason:
        lines += [f"**Deprecated:** {field.deprecation_reason}", ""]
    members = _members(field.type)
    returns = f"Returns {_type_ref(field.type)}" + (f", one of {members}." if members else ".")
    return [*lines, *_arguments(field.args), returns, ""]


def _operations(title: str, root: GraphQLObjectType | None) -> list[str]:
    if root is None:
        return []
    lines = [f"## {title}", ""]
    for name, field in root.fields.items():
        lines += _operation(root.name, name, field)
    return lines


def _fields(fields: Iterable[tuple[str, GraphQLField | GraphQLInputField]]) -> list[str]:
    rows = ["| field | type | description |", "|---|---|---|"]
    for name, field in fields:
        args = (
            f"({', '.join(f'{n}: {a.type}' for n, a in field.args.items())})"
            if isinstance(field, GraphQLField) and field.args
            else ""
        )
        note = _cell(field.description)
        if isinstance(field, GraphQLInputField) and _default(field):
            note = f"{note} (default {_default(field)})".strip()
        rows.append(f"| `{name}{args}` | {_type_ref(field.type)} | {note} |")
    return [*rows, ""]


def _kind(named: GraphQLNamedType) -> str:
    kinds: list[tuple[type, str]] = [
        (GraphQLInputObjectType, "input"),
        (GraphQLInterfaceType, "interface"),
        (GraphQLObjectType, "type"),
        (GraphQLUnionType, "union"),
        (GraphQLEnumType, "enum"),
        (GraphQLScalarType, "scalar"),
    ]
    return next(label for cls, label in kinds if isinstance(named, cls))


def _type(named: GraphQLNamedType) -> list[str]:
    lines = [f"### {named.name}", "", f"*{_kind(named)}*", ""]
    if named.description:
        lines += [named.description.strip(), ""]
    if isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
        if named.interfaces:
            lines += ["Implements " + ", ".join(_type_ref(i) for i in named.interfaces) + ".", ""]
        lines += _fields(named.fields.items())
    elif isinstance(named, GraphQLInputObjectType):
        lines += _fields(named.fields.items())
    elif isinstance(named, GraphQLUnionType):
        lines += [f"One of {_members(named)}.", ""]
    elif isinstance(named, GraphQLEnumType):
        lines += [f"- `{n}`" + (f": {_cell(v.description)}" if v.description else "") for n, v in named.values.items()]
        lines.append("")
    return lines


def _types(schema: GraphQLSchema) -> list[str]:
    roots = {t.name for t in (schema.query_type, schema.mutation_type, schema.subscription_type) if t is not None}
    lines = ["## Types", ""]
    for name in sorted(schema.type_map):
        if name.startswith("__") or name in BUILT_IN_SCALARS or name in roots:
            continue
        lines += _type(schema.type_map[name])
    return lines


def render(sdl: str) -> str:
    """The Markdown reference of an SDL document (deterministic: same SDL, same bytes)."""
    schema = build_schema(sdl)
    sections = [
        ("Queries", schema.query_type),
        ("Mutations", schema.mutation_type),
        ("Subscriptions", schema.subscription_type),
    ]
    contents = [f"- [{title}](#{_anchor(title)}) ({len(root.fields)})" for title, root in sections if root is not None]
    lines = [HEADER, "## Contents", "", *contents, "- [Types](#types)", ""]
    for title, root in sections:
        lines += _operations(title, root)
    lines += _types(schema)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=REGENERATE, description=__doc__)
    parser.add_argument("--schema", type=Path, default=SCHEMA_PATH)
    parser.add_argument("--output", type=Path, default=DOCS_PATH)
    parser.add_argument("--check", action="store_true", help="fail when the output file is out of date")
    args = parser.parse_args(argv)
    text = render(args.schema.read_text(encoding="utf-8"))
    if args.check:
        same = args.output.exists() and args.output.read_text(encoding="utf-8") == text
        sys.stdout.write(f"{args.output} is {'up to date' if same else f'OUT OF DATE: run {REGENERATE}'}\n")
        return 0 if same else 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    sys.stdout.write(f"wrote {args.output}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
