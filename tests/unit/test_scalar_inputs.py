"""Inputs of scalars are built from graphql-core's values exactly as strawberry's own conversion builds them."""

from __future__ import annotations

from typing import Any

import pytest
import strawberry
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.types.scalar import DEFAULT_SCALAR_REGISTRY
from strawberry.types.arguments import convert_argument

from graph.common.inputs import scalar_fields_input
from graph.generations.types import GenerateInput

VALUES: list[dict[str, Any]] = [
    {"modelId": "m1", "prompt": "a fox"},
    {
        "modelId": "m1",
        "prompt": "a fox",
        "presetId": "p1",
        "boardId": "b1",
        "params": {"steps": 4, "nested": [1, {"a": None}]},
        "inputChunkIds": ["c1", "c2"],
        "idempotencyKey": "k",
    },
    {"modelId": "m1", "prompt": "", "presetId": None, "params": None, "inputChunkIds": None, "idempotencyKey": None},
    {"modelId": "m1", "prompt": "x", "inputChunkIds": [], "params": [1, 2]},
]


def strawberry_conversion(value: dict[str, Any]) -> Any:
    definition = GenerateInput.__strawberry_definition__  # type: ignore[attr-defined]
    hook, definition.from_input = definition.from_input, None
    try:
        return convert_argument(value, GenerateInput, DEFAULT_SCALAR_REGISTRY, StrawberryConfig())
    finally:
        definition.from_input = hook


@pytest.mark.parametrize("value", VALUES)
def test_the_fast_path_builds_what_strawberry_builds(value: dict[str, Any]) -> None:
    fast = convert_argument(value, GenerateInput, DEFAULT_SCALAR_REGISTRY, StrawberryConfig())

    assert isinstance(fast, GenerateInput)
    assert vars(fast) == vars(strawberry_conversion(value))


def test_lists_are_copies_not_the_coerced_value() -> None:
    value = {"modelId": "m", "prompt": "p", "inputChunkIds": ["c1"]}

    built = convert_argument(value, GenerateInput, DEFAULT_SCALAR_REGISTRY, StrawberryConfig())

    assert built.input_chunk_ids == ["c1"] and built.input_chunk_ids is not value["inputChunkIds"]


def test_an_input_with_a_nested_input_is_refused() -> None:
    @strawberry.input
    class Inner:
        x: int

    with pytest.raises(TypeError, match="not a scalar"):

        @scalar_fields_input
        @strawberry.input
        class Outer:
            inner: Inner
