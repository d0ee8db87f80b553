"""sdk/operations is the single source of the operations docs/clients.md shows in its code.

The typed SDKs (sdk/typescript, sdk/python/genhub_client) are generated from these operations,
so every GraphQL operation in a Python or JavaScript block of the client guide must be one of
them, text for text once both are printed the same way: a reader who copies an example gets
exactly the typed operation of the SDK.
"""

from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    build_schema,
    parse,
    print_ast,
    validate,
)
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = ROOT / "sdk" / "operations"
GUIDE = ROOT / "docs" / "clients.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.S | re.M)
#: A string that starts like a GraphQL document: an operation keyword, or a `{` selection.
LOOKS_LIKE_GRAPHQL = re.compile(r"\s*(?:(?:query|mutation|subscription)\s*[_A-Za-z({]|fragment\s|\{\s*[_A-Za-z])")
JS_STRING = re.compile(r"`([^`]*)`|\"((?:[^\"\\\n]|\\.)*)\"|'((?:[^'\\\n]|\\.)*)'")


@dataclass(frozen=True)
class Shown:
    """A GraphQL document found in a code block of the guide."""

    text: str
    line: int


@functools.cache
def sdk_documents() -> dict[str, DocumentNode]:
    return {path.name: parse(path.read_text(encoding="utf-8")) for path in sorted(OPERATIONS.glob("*.graphql"))}


@functools.cache
def sdk_operations() -> dict[str, OperationDefinitionNode]:
    found: dict[str, OperationDefinitionNode] = {}
    for document in sdk_documents().values():
        for definition in document.definitions:
            assert isinstance(definition, OperationDefinitionNode) and definition.name, print_ast(definition)
            assert definition.name.value not in found, f"two operations are named {definition.name.value}"
            found[definition.name.value] = definition
    return found


def python_strings(code: str) -> list[str]:
    strings: list[str] = []
    nodes = list(ast.walk(ast.parse(code)))
    in_fstrings = {id(part) for node in nodes if isinstance(node, ast.JoinedStr) for part in node.values}
    for node in nodes:
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in in_fstrings:
            strings.append(node.value)
        elif isinstance(node, ast.JoinedStr):  # an f-string: its text parts, so a built query is noticed
            strings.append("".join(str(part.value) for part in node.values if isinstance(part, ast.Constant)))
    return strings


def javascript_strings(code: str) -> list[str]:
    return [next(group for group in match.groups() if group is not None) for match in JS_STRING.finditer(code)]


def graphql_in(code: str, lang: str) -> list[str]:
    strings = python_strings(code) if lang == "python" else javascript_strings(code)
    return [text for text in strings if LOOKS_LIKE_GRAPHQL.match(text)]


def shown_in_guide(text: str) -> list[Shown]:
    shown: list[Shown] = []
    for fence in FENCE.finditer(text):
        lang, code = fence.group(1), fence.group(2)
        if lang in ("python", "js"):
            line = text.count("\n", 0, fence.start()) + 1
            shown.extend(Shown(found, line) for found in graphql_in(code, lang))
    return shown


def problems_of(shown: Shown, operations: dict[str, OperationDefinitionNode]) -> list[str]:
    where = f"docs/clients.md, the block at line {shown.line}"
    if "${" in shown.text:
        return [f"{where}: an operation built by interpolation (`${{...}}`): write it out as in sdk/operations"]
    try:
        document = parse(shown.text)
    except GraphQLError as error:
        return [f"{where}: not a GraphQL document ({error.message}): {shown.text!r}"]
    problems: list[str] = []
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode) or definition.name is None:
            problems.append(f"{where}: name this operation as in sdk/operations: {print_ast(definition)}")
            continue
        name = definition.name.value
        if name not in operations:
            problems.append(f"{where}: {name} is not an operation of sdk/operations: add it there, then `make sdk`")
        elif print_ast(definition) != print_ast(operations[name]):
            problems.append(f"{where}: {name} differs from sdk/operations:\n{print_ast(definition)}")
    return problems


@pytest.fixture(scope="module")
def schema() -> GraphQLSchema:
    return build_schema((ROOT / "schema.graphql").read_text(encoding="utf-8"))


def test_every_sdk_operation_is_named_once_and_valid_against_the_schema(schema: GraphQLSchema) -> None:
    # given every document of sdk/operations
    operations = sdk_operations()
    # then each is valid against the committed schema
    for name, document in sdk_documents().items():
        assert validate(schema, document) == [], name
    assert len(operations) >= 10, sorted(operations)


def test_every_operation_the_guide_shows_in_code_is_an_sdk_operation() -> None:
    # given the operations the Python and JavaScript blocks of the guide send
    shown = shown_in_guide(GUIDE.read_text(encoding="utf-8"))
    operations = sdk_operations()
    # then each is, text for text, one of sdk/operations
    assert len(shown) >= 15, shown
    problems = [problem for found in shown for problem in problems_of(found, operations)]
    assert problems == [], "\n".join(problems)


def test_the_guide_check_finds_what_it_must_refuse() -> None:
    # given blocks that drift from the SDK in each way the check knows
    operations = sdk_operations()
    drifting = {
        "anonymous": 'Q = "query { credits { balance } }"',
        "unknown": 'Q = "query Mine { credits { balance } }"',
        "different": 'Q = """query Credits { credits { balance } }"""',
        "built": 'Q = f"query Credits {{ credits {{ {fields} }} }}"',
    }
    for kind, code in drifting.items():
        (found,) = shown_in_guide(f"```python\n{code}\n```\n")
        assert problems_of(found, operations), kind
    (interpolated,) = shown_in_guide("```js\nconst q = `subscription { x { ${ITEM} } }`;\n```\n")
    assert "interpolation" in problems_of(interpolated, operations)[0]


@settings(max_examples=50)
@given(st.sampled_from(sorted(sdk_operations())), st.sampled_from(["python", "js"]), st.text(" \n\t", max_size=3))
def test_any_sdk_operation_written_into_a_block_passes_however_it_is_spaced(name: str, lang: str, gap: str) -> None:
    # given an SDK operation pasted into a block, spaced differently than in sdk/operations
    text = print_ast(sdk_operations()[name]).replace("\n", f"\n{gap}")
    code = f'Q = """{gap}{text}"""' if lang == "python" else f"const q = `{gap}{text}`;"
    # then the check finds it and accepts it
    (found,) = shown_in_guide(f"```{lang}\n{code}\n```\n")
    assert problems_of(found, sdk_operations()) == []
