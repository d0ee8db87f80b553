"""Reading a catalogue document (domain/catalogue_document.py): the upsertModel/upsertPreset rules, every problem by path."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.catalogue import AiModel, ModelKind, Preset, validate_model_fields
from domain.catalogue_document import (
    MAX_MODELS,
    MAX_PRESETS_PER_MODEL,
    CatalogueEntries,
    catalogue_document,
    read_catalogue,
)
from domain.errors import InvalidInput

PROVIDERS = frozenset({"simulated", "kie"})


def model(slug: str = "sim-image", **fields: Any) -> dict[str, Any]:
    return {
        "slug": slug,
        "name": "Simulated image",
        "provider": "simulated",
        "kind": "image",
        "costCredits": 10,
        "capabilities": {"params": {"steps": {"type": "int", "min": 1, "max": 50, "default": 20}}},
        "presets": [{"name": "Fast", "params": {"steps": 4}}],
        **fields,
    }


def document(*models: dict[str, Any]) -> dict[str, Any]:
    return {"version": 1, "models": list(models)}


def problems_of(doc: Any) -> dict[str, str]:
    with pytest.raises(InvalidInput) as caught:
        read_catalogue(doc, known_providers=PROVIDERS)
    return {p.field: p.message for p in caught.value.fields}


def test_a_valid_document_reads_into_entries() -> None:
    # given a document of one model with a preset, and a second with defaults left out
    bare = {k: v for k, v in model("sim-video", kind="video").items() if k not in ("capabilities", "presets")}
    # when it is read
    entries = read_catalogue(document(model(name="  Simulated image "), bare), known_providers=PROVIDERS)
    # then every field is taken, names trimmed as upsertModel stores them, defaults filled in
    first, second = entries.models
    assert (first.slug, first.name, first.kind, first.cost_credits, first.is_active) == (
        "sim-image",
        "Simulated image",
        ModelKind.IMAGE,
        10,
        True,
    )
    assert [(p.name, p.params) for p in first.presets] == [("Fast", {"steps": 4})]
    assert (second.capabilities, second.presets, second.is_active) == ({}, (), True)


def test_every_problem_is_reported_at_once_with_its_path() -> None:
    # given a document with mistakes in several models, presets and fields
    doc = document(
        model(slug="Bad Slug", costCredits="3", provider="nobody"),
        model(slug="ok-model", kind="sound", isActive="yes", presets=[{"name": "Fast", "params": {"steps": 99}}]),
        model(slug="third", capabilities={"params": {"steps": {"type": "int", "min": 5, "max": 1}}}),
        "not a model",
    )
    # when it is read, then one InvalidInput names each of them by its path in the document
    assert problems_of(doc) == {
        "models[0].slug": "must be 2-63 lowercase letters, digits, '.', '_' or '-'",
        "models[0].costCredits": "must be an integer",
        "models[0].provider": "must be one of ['kie', 'simulated']",
        "models[1].kind": "must be one of image, video",
        "models[1].isActive": "must be true or false",
        "models[2].capabilities.params.steps.min": "must not be greater than max",
        "models[3]": "must be a mapping",
    }


def test_a_preset_is_checked_against_its_models_capabilities() -> None:
    presets = [
        {"name": "Too many steps", "params": {"steps": 99}},
        {"name": "Unknown", "params": {"seed": 1}},
        {"name": "  ", "params": {}},
        {"name": "Not an object", "params": [1]},
    ]
    assert problems_of(document(model(presets=presets))) == {
        "models[0].presets[0].params.steps": "must be at most 50",
        "models[0].presets[1].params.seed": "is not supported by this model",
        "models[0].presets[2].name": "must be 1-200 characters",
        "models[0].presets[3].params": "must be a JSON object",
    }


def test_unknown_keys_are_refused_with_a_suggestion() -> None:
    doc = {"version": 1, "modles": [], "models": [model(costCredit=3, presets=[{"name": "A", "parms": {}}])]}
    assert problems_of(doc) == {
        "modles": "is not a known key (did you mean 'models'?)",
        "models[0].costCredit": "is not a known key (did you mean 'costCredits'?)",
        "models[0].presets[0].parms": "is not a known key (did you mean 'params'?)",
    }


@pytest.mark.parametrize(
    ("doc", "field", "message"),
    [
        ([], "(document)", "must be a mapping with 'version' and 'models'"),
        ({"models": []}, "version", "must be 1"),
        ({"version": True, "models": []}, "version", "must be 1"),
        ({"version": 2, "models": []}, "version", "must be 1"),
        ({"version": 1, "models": {}}, "models", "must be a list of models"),
        ({"version": 1}, "models", "must be a list of models"),
        (document(model(slug=None)), "models[0].slug", "must be a string"),
        (document({"name": "x"}), "models[0].slug", "is required"),
        (document(model(costCredits=True)), "models[0].costCredits", "must be an integer"),
        (document(model(costCredits=1.0)), "models[0].costCredits", "must be an integer"),
        (document(model(costCredits=-1)), "models[0].costCredits", "must be between 0 and 1000000"),
        (document(model(capabilities=None)), "models[0].capabilities", "must be a JSON object"),
        (document(model(presets={"name": "x"})), "models[0].presets", "must be a list of presets"),
        (document(model(presets=["Fast"])), "models[0].presets[0]", "must be a mapping with 'name' and 'params'"),
        (document(model(presets=[{"params": {}}])), "models[0].presets[0].name", "is required"),
        (document(model(name="a\x00b")), "models[0].name", "must not contain NUL characters"),
        # `$` would have let a trailing newline through: the slug and provider are matched whole
        (
            document(model(slug="sim-image\n")),
            "models[0].slug",
            "must be 2-63 lowercase letters, digits, '.', '_' or '-'",
        ),
        (
            document(model(provider="kie\n")),
            "models[0].provider",
            "must be a provider name such as 'simulated' or 'kie'",
        ),
        (
            document(model(capabilities={"params": {"steps\n": {"type": "int"}}})),
            "models[0].capabilities.params.steps\n",
            "must be named with 1-64 letters, digits or '_' (not starting with a digit)",
        ),
        (
            document(model(capabilities={"params": {"x": {"type": "number", "max": float("nan")}}})),
            "models[0].capabilities",
            "must hold only finite numbers",
        ),
    ],
)
def test_wrong_shapes_and_types_are_refused(doc: Any, field: str, message: str) -> None:
    assert problems_of(doc).get(field) == message


def test_upsert_model_matches_a_slug_whole_too() -> None:
    # the rule is shared: upsertModel refuses the trailing newline as the catalogue file does
    with pytest.raises(InvalidInput) as caught:
        validate_model_fields(slug="flux\n", name="Flux", provider="kie", cost_credits=1, capabilities={})
    assert [p.field for p in caught.value.fields] == ["slug"]


def test_a_slug_or_a_preset_name_given_twice_is_refused() -> None:
    # given the same slug twice, and two preset names a reader cannot tell apart (case, Unicode forms)
    presets = [{"name": "Caf\u00e9", "params": {}}, {"name": " cafe\u0301 ", "params": {}}]
    doc = document(model(presets=presets), model())
    # then both repeats are named, pointing at the first
    assert problems_of(doc) == {
        "models[0].presets[1].name": "names the same preset as models[0].presets[0]",
        "models[1].slug": "repeats the slug of models[0]",
    }


def test_the_document_is_bounded() -> None:
    too_many_models = {"version": 1, "models": [model(f"m{i:04d}") for i in range(MAX_MODELS + 1)]}
    assert problems_of(too_many_models) == {"models": f"must hold at most {MAX_MODELS} models"}
    presets = [{"name": f"p{i}", "params": {}} for i in range(MAX_PRESETS_PER_MODEL + 1)]
    assert problems_of(document(model(presets=presets))) == {
        "models[0].presets": f"must hold at most {MAX_PRESETS_PER_MODEL} presets"
    }


def test_an_exported_catalogue_reads_back_to_the_same_entries() -> None:
    # given stored models and presets
    image = AiModel(uuid.uuid4(), "b-image", "B", "kie", ModelKind.IMAGE, 3, {"providerModel": "x"}, False)
    video = AiModel(uuid.uuid4(), "a-video", "A", "simulated", ModelKind.VIDEO, 0, {}, True)
    preset = Preset(uuid.uuid4(), image.id, "Only", {})
    # when they are exported and read back
    entries = read_catalogue(catalogue_document([video, image], [preset]), known_providers=PROVIDERS)
    # then each model and preset comes back as stored (models by kind then slug)
    assert [(m.slug, m.is_active, m.capabilities, [p.name for p in m.presets]) for m in entries.models] == [
        ("b-image", False, {"providerModel": "x"}, ["Only"]),
        ("a-video", True, {}, []),
    ]


JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=25,
)
KEYS = st.sampled_from(["version", "models", "slug", "name", "provider", "kind", "costCredits", "isActive"])
HOSTILE = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS | st.text(max_size=8), inner, max_size=6),
    max_leaves=30,
)


def _outcome(doc: Any) -> CatalogueEntries | InvalidInput:
    try:
        return read_catalogue(doc, known_providers=PROVIDERS)
    except InvalidInput as exc:
        return exc


@settings(max_examples=300, deadline=None)
@given(HOSTILE)
def test_any_document_is_either_read_or_refused_with_paths(doc: Any) -> None:
    # when any JSON-shaped value is read, then it is entries or InvalidInput (never another exception)
    outcome = _outcome(doc)
    if isinstance(outcome, InvalidInput):
        assert outcome.fields
        assert all(isinstance(p.field, str) and p.field for p in outcome.fields)


def _child(target: Any, step: Any) -> Any:
    """The container at `step` below `target`, or `target` itself when there is none."""
    inside = target.get(step) if isinstance(target, dict) and isinstance(step, str) else None
    if isinstance(target, list) and isinstance(step, int) and step < len(target):
        inside = target[step]
    return inside if isinstance(inside, dict | list) else target


PATHS = st.lists(
    st.sampled_from(["models", 0, "capabilities", "params", "steps", "presets", "params", "min"]), max_size=5
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=PATHS, value=JSON_VALUES)
def test_a_valid_document_with_any_value_swapped_in_is_read_or_refused(path: list[Any], value: Any) -> None:
    # given a valid document and any value put anywhere along a path into it
    doc: Any = document(model(), model("other"))
    target = doc
    for step in path[:-1]:
        target = _child(target, step)
    if isinstance(target, dict) and path and isinstance(path[-1], str):
        target[path[-1]] = value
    elif isinstance(target, list) and target:
        target[0] = value
    before = copy.deepcopy(doc)
    # when it is read, then the outcome is entries or InvalidInput, and the document is not modified
    outcome = _outcome(doc)
    assert isinstance(outcome, CatalogueEntries | InvalidInput)
    assert repr(doc) == repr(before)
    if isinstance(outcome, CatalogueEntries):
        # what was accepted passes the upsertModel rules on its own
        for entry in outcome.models:
            validate_model_fields(
                slug=entry.slug,
                name=entry.name,
                provider=entry.provider,
                cost_credits=entry.cost_credits,
                capabilities=entry.capabilities,
            )
