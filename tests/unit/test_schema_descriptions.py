"""Every input field and every argument of the schema says what it is for (its description),
so GraphiQL's docs, the generated SDKs and docs/schema.md explain each thing a client sends."""

from __future__ import annotations

from graphql import GraphQLInputObjectType, GraphQLInterfaceType, GraphQLObjectType, GraphQLSchema

from graph.schema import build_schema

SCHEMA: GraphQLSchema = build_schema().graphql_schema
BUILT_IN_DIRECTIVES = {"include", "skip", "deprecated", "specifiedBy", "oneOf", "defer", "stream"}


def undescribed(schema: GraphQLSchema) -> list[str]:
    """`Type.field`, `Type.field(argument)` and `@directive(argument)` without a description."""
    missing: list[str] = []
    for name, named in sorted(schema.type_map.items()):
        if name.startswith("__"):
            continue
        if isinstance(named, GraphQLInputObjectType):
            missing += [f"{name}.{f}" for f, field in named.fields.items() if not (field.description or "").strip()]
        if isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
            for field_name, field in named.fields.items():
                missing += [
                    f"{name}.{field_name}({a})" for a, arg in field.args.items() if not (arg.description or "").strip()
                ]
    for directive in schema.directives:
        if directive.name not in BUILT_IN_DIRECTIVES:
            missing += [f"@{directive.name}({a})" for a, arg in directive.args.items() if not (arg.description or "")]
    return missing


def test_every_input_field_and_argument_has_a_description() -> None:
    missing = undescribed(SCHEMA)
    assert missing == [], "add strawberry.field(description=...) / strawberry.argument(description=...):\n  " + (
        "\n  ".join(missing)
    )
