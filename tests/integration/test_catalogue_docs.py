"""The GraphQL examples of docs/catalogue.md run as written, as an admin, against the real app."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fixtures.app import GraphQLClient, SettingsFactory, admin_token, running_app

DOC = Path(__file__).resolve().parents[2] / "docs" / "catalogue.md"


def examples() -> list[str]:
    return re.findall(r"^```graphql\n(.*?)^```", DOC.read_text(encoding="utf-8"), re.S | re.M)


@pytest.fixture
async def admin(make_settings: SettingsFactory) -> AsyncIterator[GraphQLClient]:
    async with running_app(make_settings()) as client:
        yield client.as_user(await admin_token(client))


async def test_the_model_and_preset_examples_work(admin: GraphQLClient) -> None:
    # given the document's two examples: a model, then a preset of it
    model_example, preset_example = examples()
    # when an admin sends them as written (the preset naming the new model)
    model = (await admin.execute(model_example))["data"]["upsertModel"]
    assert model["__typename"] == "ModelSuccess", model
    preset_doc = preset_example.replace("MODEL_ID", model["model"]["id"])
    preset = (await admin.execute(preset_doc))["data"]["upsertPreset"]
    # then both are stored as described
    assert model["model"]["capabilities"]["params"]["steps"] == {"type": "int", "min": 1, "max": 50, "default": 28}
    assert preset["__typename"] == "PresetSuccess", preset
    assert preset["preset"]["params"] == {"aspectRatio": "16:9", "steps": 12}


async def test_the_documented_refusals_are_the_real_messages(admin: GraphQLClient) -> None:
    # given the problems the document quotes
    text = DOC.read_text(encoding="utf-8")
    quoted = {" ".join(q.split()) for q in re.findall(r"`(capabilities\.params\.[\w.]+: [^`]+)`", text)}
    assert len(quoted) == 3
    upsert = """mutation ($caps: JSON) { upsertModel(input: {slug: "bad", name: "Bad", provider: "simulated",
      kind: IMAGE, costCredits: 1, capabilities: $caps}) { ... on InvalidInput { fields { field message } } } }"""
    bad_specs = [
        {"steps": {"type": "int", "min": "1"}},
        {"style": {"type": "enum", "values": "abc"}},
        {"steps": {"type": "int", "max": 50, "default": 51}},
    ]
    # when an admin writes each malformed spec
    seen = set()
    for params in bad_specs:
        body = await admin.execute(upsert, {"caps": {"params": params}})
        seen |= {f"{f['field']}: {f['message']}" for f in body["data"]["upsertModel"]["fields"]}
    # then the answers carry exactly those messages
    assert quoted <= seen, (quoted, seen)
