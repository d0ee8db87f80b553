"""Capability specs are checked when written; request params against them, with text and numbers PostgreSQL can store."""

from __future__ import annotations

import math
import uuid
from typing import Any

import pytest

from domain.catalogue import AiModel, ModelKind, resolve_params, validate_model_fields
from domain.errors import InvalidInput, Problems
from domain.text import json_problem, text_problem

SEEDED = {
    "params": {
        "width": {"type": "int", "min": 64, "max": 2048, "default": 512},
        "scale": {"type": "number", "min": 0.5, "max": 20.0},
        "style": {"type": "enum", "values": ["photo", "sketch"], "default": "photo"},
        "seedless": {"type": "bool"},
        "negative": {"type": "string", "maxLength": 20},
    },
    "maxPromptLength": 2000,
    "maxInputs": 4,
    "deadlineSeconds": 300,
    "providerModel": "vendor/model-1",
}


def model(capabilities: dict[str, Any]) -> AiModel:
    return AiModel(uuid.uuid4(), "m", "M", "simulated", ModelKind.IMAGE, 1, capabilities)


def problems_of(capabilities: Any) -> list[tuple[str, str]]:
    try:
        validate_model_fields(slug="m-1", name="M", provider="simulated", cost_credits=1, capabilities=capabilities)
    except InvalidInput as exc:
        return [(f.field, f.message) for f in exc.fields]
    return []


def test_well_formed_capabilities_pass() -> None:
    assert problems_of(SEEDED) == []
    assert problems_of({}) == []


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"type": "int", "min": 1.5}, "min"),
        ({"type": "int", "max": True}, "max"),
        ({"type": "number", "min": "0"}, "min"),
        ({"type": "enum", "values": []}, "values"),
        ({"type": "enum", "values": [["nested"]]}, "values"),
        ({"type": "string", "maxLength": 0}, "maxLength"),
        ({"type": "string", "default": 5}, "default"),
        ({"type": "enum", "values": ["a"], "default": "b"}, "default"),
        ({"type": "float"}, "type"),
    ],
)
def test_malformed_param_specs_are_refused(spec: dict[str, Any], field: str) -> None:
    assert [f for f, _ in problems_of({"params": {"p": spec}})] == [f"capabilities.params.p.{field}"]


def test_non_finite_numbers_and_nul_anywhere_in_capabilities_are_refused() -> None:
    assert problems_of({"params": {"p": {"type": "number", "max": math.inf}}}) == [
        ("capabilities", "must hold only finite numbers")
    ]
    assert problems_of({"notes": ["fine", {"deep": "a\x00"}]}) == [
        ("capabilities", "must not contain NUL characters (in a string)")
    ]


def resolved(params: Any, capabilities: dict[str, Any] = SEEDED) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    problems = Problems()
    merged = resolve_params(model(capabilities), None, params, problems)
    return merged, [(p.field, p.message) for p in problems.items]


def test_params_take_defaults_and_pass() -> None:
    merged, problems = resolved({"scale": 7, "negative": "blurry"})
    assert problems == []
    assert merged == {"width": 512, "style": "photo", "scale": 7, "negative": "blurry"}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"scale": math.nan}, ("params", "must hold only finite numbers")),
        ({"scale": -math.inf}, ("params", "must hold only finite numbers")),
        ({"negative": "a\x00"}, ("params", "must not contain NUL characters (in a string)")),
        ({"negative": "\ud800"}, ("params", "must be valid Unicode text (no unpaired surrogates) (in a string)")),
        ({"negative": "x" * 21}, ("params.negative", "is too long")),
        ({"style": True}, ("params.style", "must be one of ['photo', 'sketch']")),
        ({"seedless": 1}, ("params.seedless", "must be true or false")),
        ({"width": 1.0}, ("params.width", "must be an integer")),
        ({"scale": 0.1}, ("params.scale", "must be at least 0.5")),
    ],
)
def test_bad_params_are_field_problems(params: dict[str, Any], expected: tuple[str, str]) -> None:
    _, problems = resolved(params)
    assert problems == [expected]


def test_enum_values_match_by_kind_too() -> None:
    numeric = {"params": {"n": {"type": "enum", "values": [1, 2]}}}
    assert resolved({"n": 1}, numeric)[1] == []
    assert resolved({"n": True}, numeric)[1] == [("params.n", "must be one of [1, 2]")]
    assert resolved({"n": "1"}, numeric)[1] == [("params.n", "must be one of [1, 2]")]


def test_text_and_json_problems() -> None:
    assert text_problem("plain ascii") is None
    assert text_problem("émoji 🦊 fine") is None
    assert text_problem("nul\x00") == "must not contain NUL characters"
    assert text_problem("lone \udfff") == "must be valid Unicode text (no unpaired surrogates)"
    assert json_problem({"a": [1, 2.5, None, True, {"b": "c"}]}) is None
    assert json_problem({"key\x00": 1}) == "must not contain NUL characters (in a string)"
    assert json_problem([1, [2, [math.nan]]]) == "must hold only finite numbers"
