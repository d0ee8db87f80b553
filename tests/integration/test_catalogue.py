"""Catalogue and admin mutations on PostgreSQL; the cache is invalidated on every replica through Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.fixtures.app import GraphQLClient, SettingsFactory, admin_token, register_user, running_app
from tests.fixtures.waiting import eventually

pytestmark = pytest.mark.postgres

UPSERT_MODEL = """
mutation Upsert($input: UpsertModelInput!) {
  upsertModel(input: $input) {
    __typename
    ... on ModelSuccess { model { id slug name costCredits isActive capabilities } }
    ... on InvalidInput { fields { field } }
    ... on Error { code message }
  }
}
"""
UPSERT_PRESET = """
mutation Preset($input: UpsertPresetInput!) {
  upsertPreset(input: $input) {
    __typename
    ... on PresetSuccess { preset { id name params model { slug } } }
    ... on InvalidInput { fields { field } }
    ... on Error { code }
  }
}
"""
SET_SETTING = """
mutation Set($key: String!, $value: JSON!) {
  setAdminSetting(key: $key, value: $value) {
    __typename
    ... on AdminSettingSuccess { setting { key value } }
    ... on Error { code }
  }
}
"""
GRANT = """
mutation Grant($input: GrantCreditsInput!) {
  grantCredits(input: $input) {
    __typename
    ... on GrantCreditsSuccess { balance { balance available } entry { kind amount reason } }
    ... on Error { code }
  }
}
"""
MODELS = "query Models($kind: ModelKind) { models(kind: $kind) { slug name costCredits } }"
PRESETS = "query Presets($m: ID) { presets(modelId: $m) { name params } }"


def model_input(slug: str, **extra: Any) -> dict[str, Any]:
    return {
        "input": {
            "slug": slug,
            "name": "Test image",
            "provider": "simulated",
            "kind": "IMAGE",
            "costCredits": 7,
            "capabilities": {"params": {"steps": {"type": "int", "min": 1, "max": 50, "default": 20}}},
            **extra,
        }
    }


@pytest.fixture
async def client(clean_postgres: str, make_settings: SettingsFactory) -> AsyncIterator[GraphQLClient]:
    async with running_app(make_settings(database_url=clean_postgres)) as c:
        yield c


async def test_admin_upserts_a_model_by_slug(client: GraphQLClient) -> None:
    admin = client.as_user(await admin_token(client))
    created = (await admin.execute(UPSERT_MODEL, model_input("test-image")))["data"]["upsertModel"]
    assert created["__typename"] == "ModelSuccess"
    updated = (await admin.execute(UPSERT_MODEL, model_input("test-image", costCredits=9, name="Renamed")))["data"]
    assert updated["upsertModel"]["model"]["id"] == created["model"]["id"]
    listed = (await client.execute(MODELS, {"kind": "IMAGE"}))["data"]["models"]
    assert listed == [{"slug": "test-image", "name": "Renamed", "costCredits": 9}]
    assert (await client.execute(MODELS, {"kind": "VIDEO"}))["data"]["models"] == []


async def test_inactive_models_are_not_listed(client: GraphQLClient) -> None:
    admin = client.as_user(await admin_token(client))
    await admin.execute(UPSERT_MODEL, model_input("off-model", isActive=False))
    assert (await client.execute(MODELS))["data"]["models"] == []


async def test_only_admins_list_inactive_models(client: GraphQLClient) -> None:
    # given an active and a deactivated model
    admin = client.as_user(await admin_token(client))
    await admin.execute(UPSERT_MODEL, model_input("on-model"))
    await admin.execute(UPSERT_MODEL, model_input("off-model", isActive=False))
    everything = "query { models(includeInactive: true) { slug isActive } }"
    # when an admin, a plain user and an anonymous caller ask for inactive ones too
    listed = (await admin.execute(everything))["data"]["models"]
    user = await register_user(client, "curious@example.com")
    as_user = await client.as_user(user["accessToken"]).execute(everything, expect_errors=True)
    anonymous = await client.execute(everything, expect_errors=True)
    # then only the admin gets them; the others get typed errors, and nothing else leaks
    assert sorted(listed, key=lambda m: m["slug"]) == [
        {"slug": "off-model", "isActive": False},
        {"slug": "on-model", "isActive": True},
    ]
    assert as_user["errors"][0]["extensions"]["code"] == "FORBIDDEN" and as_user["data"] is None
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED" and anonymous["data"] is None


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"slug": "Not A Slug"}, "slug"),
        ({"costCredits": -1}, "costCredits"),
        ({"provider": "nobody"}, "provider"),
        ({"capabilities": [1, 2]}, "capabilities"),
        ({"name": "  "}, "name"),
        ({"name": "a\x00b"}, "name"),
        # capability specs that would otherwise fail every later generate
        ({"capabilities": {"params": {"steps": {"type": "int", "min": "1"}}}}, "capabilities.params.steps.min"),
        ({"capabilities": {"params": {"steps": {"type": "integer"}}}}, "capabilities.params.steps.type"),
        (
            {"capabilities": {"params": {"style": {"type": "enum", "values": "abc"}}}},
            "capabilities.params.style.values",
        ),
        (
            {"capabilities": {"params": {"text": {"type": "string", "maxLength": "x"}}}},
            "capabilities.params.text.maxLength",
        ),
        ({"capabilities": {"params": {"steps": {"type": "int", "min": 5, "max": 1}}}}, "capabilities.params.steps.min"),
        (
            {"capabilities": {"params": {"steps": {"type": "int", "max": 9, "default": 10}}}},
            "capabilities.params.steps.default",
        ),
        ({"capabilities": {"params": {"steps": 3}}}, "capabilities.params.steps"),
        ({"capabilities": {"params": {"two words": {}}}}, "capabilities.params.two words"),
        ({"capabilities": {"maxInputs": 17}}, "capabilities.maxInputs"),
        ({"capabilities": {"deadlineSeconds": "soon"}}, "capabilities.deadlineSeconds"),
        ({"capabilities": {"providerModel": "m\x00"}}, "capabilities"),
    ],
)
async def test_upsert_model_validates(client: GraphQLClient, extra: dict[str, Any], field: str) -> None:
    admin = client.as_user(await admin_token(client))
    result = (await admin.execute(UPSERT_MODEL, {"input": {**model_input("ok-slug")["input"], **extra}}))["data"]
    assert result["upsertModel"]["__typename"] == "InvalidInput"
    assert field in [f["field"] for f in result["upsertModel"]["fields"]]


async def test_an_update_without_capabilities_keeps_them(client: GraphQLClient) -> None:
    # given a model with a parameter, as an admin created it
    admin = client.as_user(await admin_token(client))
    created = (await admin.execute(UPSERT_MODEL, model_input("keeps-caps")))["data"]["upsertModel"]["model"]
    # when the admin changes only its price, leaving capabilities (and isActive) out
    only_cost = {k: v for k, v in model_input("keeps-caps", costCredits=3)["input"].items() if k != "capabilities"}
    updated = (await admin.execute(UPSERT_MODEL, {"input": only_cost}))["data"]["upsertModel"]["model"]
    # then the parameters stay, and a request using them still passes validation
    assert updated["capabilities"] == created["capabilities"]
    assert updated["costCredits"] == 3 and updated["isActive"] is True
    # and giving capabilities replaces them
    cleared = (await admin.execute(UPSERT_MODEL, model_input("keeps-caps", capabilities={})))["data"]
    assert cleared["upsertModel"]["model"]["capabilities"] == {}


async def test_non_admins_are_forbidden_and_change_nothing(client: GraphQLClient) -> None:
    user = await register_user(client, "plain@example.com")
    me = client.as_user(user["accessToken"])
    assert (await me.execute(UPSERT_MODEL, model_input("sneaky")))["data"]["upsertModel"]["__typename"] == "Forbidden"
    assert (await me.execute(SET_SETTING, {"key": "k", "value": 1}))["data"]["setAdminSetting"][
        "__typename"
    ] == "Forbidden"
    grant = {"input": {"userId": user["user"]["id"], "amount": 5, "reason": "self"}}
    assert (await me.execute(GRANT, grant))["data"]["grantCredits"]["__typename"] == "Forbidden"
    settings = await me.execute("{ adminSettings { key } }", expect_errors=True)
    assert settings["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (await client.execute(MODELS))["data"]["models"] == []


async def test_presets_belong_to_a_model_and_are_validated(client: GraphQLClient) -> None:
    admin = client.as_user(await admin_token(client))
    model = (await admin.execute(UPSERT_MODEL, model_input("with-presets")))["data"]["upsertModel"]["model"]
    ok = await admin.execute(UPSERT_PRESET, {"input": {"modelId": model["id"], "name": "Fast", "params": {"steps": 4}}})
    preset = ok["data"]["upsertPreset"]
    assert preset["__typename"] == "PresetSuccess" and preset["preset"]["model"]["slug"] == "with-presets"
    bad = await admin.execute(
        UPSERT_PRESET, {"input": {"modelId": model["id"], "name": "Bad", "params": {"steps": 99}}}
    )
    assert bad["data"]["upsertPreset"]["__typename"] == "InvalidInput"
    nul_name = {"input": {"modelId": model["id"], "name": "Fast\x00", "params": {}}}
    assert (await admin.execute(UPSERT_PRESET, nul_name))["data"]["upsertPreset"]["__typename"] == "InvalidInput"
    missing = {"input": {"modelId": str(uuid.uuid4()), "name": "X", "params": {}}}
    assert (await admin.execute(UPSERT_PRESET, missing))["data"]["upsertPreset"]["__typename"] == "NotFound"
    renamed = {
        "input": {"id": preset["preset"]["id"], "modelId": model["id"], "name": "Faster", "params": {"steps": 2}}
    }
    assert (await admin.execute(UPSERT_PRESET, renamed))["data"]["upsertPreset"]["__typename"] == "PresetSuccess"
    listed = (await client.execute(PRESETS, {"m": model["id"]}))["data"]["presets"]
    assert listed == [{"name": "Faster", "params": {"steps": 2}}]
    assert (await client.execute(PRESETS, {"m": "not-a-uuid"}))["data"]["presets"] == []


async def test_admin_settings_round_trip(client: GraphQLClient) -> None:
    admin = client.as_user(await admin_token(client))
    result = (await admin.execute(SET_SETTING, {"key": "signup.bonus", "value": {"credits": 50}}))["data"]
    assert result["setAdminSetting"]["setting"] == {"key": "signup.bonus", "value": {"credits": 50}}
    bad = (await admin.execute(SET_SETTING, {"key": "Bad Key!", "value": 1}))["data"]["setAdminSetting"]
    assert bad["__typename"] == "InvalidInput"
    nul = (await admin.execute(SET_SETTING, {"key": "motd", "value": {"text": "a\x00b"}}))["data"]
    assert nul["setAdminSetting"]["__typename"] == "InvalidInput"
    assert (await admin.execute("{ adminSettings { key value } }"))["data"]["adminSettings"] == [
        {"key": "signup.bonus", "value": {"credits": 50}}
    ]


async def test_grant_credits_is_idempotent_by_key(client: GraphQLClient) -> None:
    admin = client.as_user(await admin_token(client))
    user = await register_user(client, "gift@example.com")
    grant = {"input": {"userId": user["user"]["id"], "amount": 25, "reason": "welcome", "idempotencyKey": "welcome-1"}}
    first = (await admin.execute(GRANT, grant))["data"]["grantCredits"]
    again = (await admin.execute(GRANT, grant))["data"]["grantCredits"]
    assert first["balance"] == again["balance"] == {"balance": 25, "available": 25}
    assert first["entry"] == {"kind": "GRANT", "amount": 25, "reason": "welcome"}
    other_amount = {"input": {**grant["input"], "amount": 30}}
    assert (await admin.execute(GRANT, other_amount))["data"]["grantCredits"]["__typename"] == "InvalidInput"
    nobody = {"input": {**grant["input"], "userId": str(uuid.uuid4()), "idempotencyKey": None}}
    assert (await admin.execute(GRANT, nobody))["data"]["grantCredits"]["__typename"] == "NotFound"
    for amount in (0, -5, 10_000_001):
        bad = {"input": {**grant["input"], "amount": amount, "idempotencyKey": None}}
        assert (await admin.execute(GRANT, bad))["data"]["grantCredits"]["__typename"] == "InvalidInput"
    ledger = await client.as_user(user["accessToken"]).execute("{ creditLedger { edges { node { kind amount } } } }")
    assert [e["node"] for e in ledger["data"]["creditLedger"]["edges"]] == [{"kind": "GRANT", "amount": 25}]


async def invalidation_listeners(client: GraphQLClient, count: int) -> bool:
    """Whether `count` connections listen on the catalogue's invalidation channel."""
    _, listeners = await client.container.redis.execute_command("PUBSUB", "NUMSUB", "genhub:catalogue:invalidate")
    return int(listeners) >= count


async def lists_models(client: GraphQLClient) -> bool:
    return bool((await client.execute(MODELS))["data"]["models"])


@pytest.mark.redis
async def test_a_write_on_one_replica_is_seen_by_another_at_once(
    clean_postgres: str, clean_redis: str, make_settings: SettingsFactory
) -> None:
    # given two replicas whose caches would otherwise hold the catalogue for an hour
    settings = make_settings(database_url=clean_postgres, redis_url=clean_redis, catalogue_cache_ttl_seconds=3600)
    async with running_app(settings) as replica_a, running_app(settings) as replica_b:
        assert (await replica_b.execute(MODELS))["data"]["models"] == []  # B has cached the empty catalogue
        await eventually(lambda: invalidation_listeners(replica_b, 2), what="both replicas to listen for invalidations")
        admin = replica_a.as_user(await admin_token(replica_a))
        # when replica A changes the catalogue
        await admin.execute(UPSERT_MODEL, model_input("fresh-model"))
        # then replica B serves the new model without waiting for its TTL
        await eventually(lambda: lists_models(replica_b), what="replica B to list the new model", timeout=2.5)
        assert [m["slug"] for m in (await replica_b.execute(MODELS))["data"]["models"]] == ["fresh-model"]
