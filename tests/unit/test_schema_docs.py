"""docs/schema.md is generated from schema.graphql and must be committed up to date."""

from __future__ import annotations

from pathlib import Path

from graphql import build_schema

from graph.schema_docs import REGENERATE, main, render

ROOT = Path(__file__).resolve().parents[2]

SMALL_SDL = '''
"""A thing."""
type Thing { id: ID! "Its name." name: String! }
type Oops implements Error { code: String! message: String! }
interface Error { code: String! message: String! }
union ThingResult = Thing | Oops
enum Colour { RED "the sky" BLUE }  # a description comes before its value
input ThingInput { name: String! colour: Colour = RED }
type Query {
  "One thing."
  thing(id: ID!, first: Int! = 20): Thing
}
type Mutation { makeThing(input: ThingInput!): ThingResult! }
'''


def test_the_committed_reference_matches_schema_graphql() -> None:
    # given the committed SDL and reference
    sdl = (ROOT / "schema.graphql").read_text(encoding="utf-8")
    committed = ROOT / "docs" / "schema.md"

    # when the reference is regenerated
    expected = render(sdl)

    # then nothing changed
    assert committed.exists(), f"docs/schema.md is missing: run `{REGENERATE}` in the repository root"
    assert committed.read_text(encoding="utf-8") == expected, (
        f"docs/schema.md is out of date with schema.graphql: run `{REGENERATE}` "
        "(after `genhub export-schema`) and commit docs/schema.md"
    )


def test_every_operation_of_the_schema_is_documented() -> None:
    reference = (ROOT / "docs" / "schema.md").read_text(encoding="utf-8")
    sdl = (ROOT / "schema.graphql").read_text(encoding="utf-8")
    schema = build_schema(sdl)  # parsed: arguments with descriptions span several lines
    for root in (schema.query_type, schema.mutation_type, schema.subscription_type):
        for name in root.fields if root is not None else ():
            assert f"### `{root.name}.{name}`" in reference, f"{root.name}.{name}"  # type: ignore[union-attr]


def test_render_lists_operations_arguments_unions_and_types() -> None:
    # when a small schema is rendered
    text = render(SMALL_SDL)

    # then operations carry their signature, description, arguments and result members
    assert "### `Query.thing`\n\n`thing(id: ID!, first: Int!): Thing`\n\nOne thing." in text
    assert "| `first` | `Int!` | `20` |" in text
    assert "Returns [`ThingResult!`](#thingresult), one of [`Thing`](#thing) | [`Oops`](#oops)." in text
    # and types list fields, interfaces, enum values and input defaults
    assert "| `name` | `String!` | Its name. |" in text
    assert "Implements [`Error`](#error)." in text
    assert "- `BLUE`: the sky" in text
    assert "| `colour` | [`Colour`](#colour) | (default `RED`) |" in text
    assert "- [Mutations](#mutations) (1)" in text and "(#subscriptions)" not in text


def test_the_cli_writes_and_checks(tmp_path: Path) -> None:
    # given a schema file
    schema, output = tmp_path / "schema.graphql", tmp_path / "docs" / "schema.md"
    schema.write_text(SMALL_SDL, encoding="utf-8")
    args = ["--schema", str(schema), "--output", str(output)]

    # then --check fails before writing and passes after
    assert main([*args, "--check"]) == 1
    assert main(args) == 0 and output.read_text(encoding="utf-8") == render(SMALL_SDL)
    assert main([*args, "--check"]) == 0
