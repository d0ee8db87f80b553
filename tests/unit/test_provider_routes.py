"""A model's provider routes (domain/provider_routes.py): reading them, and refusing bad ones in upsertModel and
the catalogue file, by path, for generated route lists."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.catalogue import AiModel, ModelKind, model_problems
from domain.catalogue_document import read_catalogue
from domain.errors import InvalidInput
from domain.provider_routes import MAX_ROUTES, ProviderRoute, public_capabilities
from domain.use_cases import catalogue
from domain.users import Role
from tests.unit.fakes import Fakes, principal_of

KNOWN = frozenset({"kie", "simulated", "replicate"})
PARAMS = {"steps": {"type": "int"}, "seed": {"type": "int"}, "style": {"type": "string"}}
ROUTES = [
    {"provider": "kie", "providerModel": "flux/pro", "params": {"steps": "num_inference_steps"}},
    {"provider": "simulated"},
]


def model(**capabilities: Any) -> AiModel:
    return AiModel(uuid.uuid4(), "flux-pro", "Flux", "kie", ModelKind.IMAGE, 10, capabilities)


def test_routes_are_read_in_order_with_the_slug_as_a_missing_model_name() -> None:
    routes = model(routes=ROUTES, params=PARAMS).routes
    assert routes == (
        ProviderRoute(0, "kie", "flux/pro", {"steps": "num_inference_steps"}),
        ProviderRoute(1, "simulated", "flux-pro", {}),
    )


def test_a_model_without_routes_has_its_own_provider_as_the_one_route() -> None:
    assert model(providerModel="flux/dev").routes == (ProviderRoute(0, "kie", "flux/dev"),)
    assert model().routes == (ProviderRoute(0, "kie", "flux-pro"),)


def test_params_go_out_under_the_providers_names_and_others_unchanged() -> None:
    route = ProviderRoute(0, "kie", "m", {"steps": "num_inference_steps"})
    assert route.provider_params({"steps": 4, "seed": 1, "_attempt": 0}) == {
        "num_inference_steps": 4,
        "seed": 1,
        "_attempt": 0,
    }


def test_clients_do_not_see_the_routes_in_capabilities() -> None:
    assert public_capabilities({"routes": ROUTES, "params": PARAMS}) == {"params": PARAMS}


def problems(capabilities: Any, provider: str = "kie") -> dict[str, str]:
    """The problems upsertModel's validation finds (the same function the catalogue file uses)."""
    found = model_problems(
        slug="flux-pro",
        name="Flux",
        provider=provider,
        cost_credits=10,
        capabilities=capabilities,
        known_providers=KNOWN,
    )
    return {p.field: p.message for p in found.items}


@pytest.mark.parametrize(
    ("routes", "field"),
    [
        ("kie", "capabilities.routes"),
        ([], "capabilities.routes"),
        ([{"provider": "kie"}] * (MAX_ROUTES + 1), "capabilities.routes"),
        ([{"provider": "kie"}, "simulated"], "capabilities.routes[1]"),
        ([{"provider": "kie"}, {"provider": "nope"}], "capabilities.routes[1].provider"),
        ([{"provider": "kie"}, {"provider": "Bad Name"}], "capabilities.routes[1].provider"),
        ([{"provider": "kie"}, {"provider": 3}], "capabilities.routes[1].provider"),
        ([{"provider": "simulated"}], "capabilities.routes[0].provider"),
        ([{"provider": "kie", "providerModel": ""}], "capabilities.routes[0].providerModel"),
        ([{"provider": "kie", "providerModel": "x" * 201}], "capabilities.routes[0].providerModel"),
        ([{"provider": "kie", "weight": 2}], "capabilities.routes[0].weight"),
        ([{"provider": "kie"}, {"provider": "kie"}], "capabilities.routes[1]"),
        ([{"provider": "kie", "params": []}], "capabilities.routes[0].params"),
        ([{"provider": "kie", "params": {"cfg": "guidance"}}], "capabilities.routes[0].params.cfg"),
        ([{"provider": "kie", "params": {"steps": 3}}], "capabilities.routes[0].params.steps"),
        ([{"provider": "kie", "params": {"steps": "_private"}}], "capabilities.routes[0].params.steps"),
        ([{"provider": "kie", "params": {"steps": "n", "seed": "n"}}], "capabilities.routes[0].params.seed"),
        ([{"provider": "kie", "params": {"steps": "seed"}}], "capabilities.routes[0].params.steps"),
    ],
)
def test_a_malformed_route_is_refused_by_its_path(routes: Any, field: str) -> None:
    assert field in problems({"params": PARAMS, "routes": routes})


def test_well_formed_routes_pass() -> None:
    assert problems({"params": PARAMS, "routes": ROUTES}) == {}
    swapped = {"params": PARAMS, "routes": [{"provider": "kie", "params": {"steps": "seed", "seed": "steps"}}]}
    assert problems(swapped) == {}


# Storable text (NUL and lone surrogates are refused for the whole document before routes are read).
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=10)
NAMES = st.sampled_from(sorted(KNOWN)) | st.sampled_from(["nope", "fal", "Bad", "", "x" * 40]) | TEXT


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(first=st.sampled_from(sorted(KNOWN)), rest=st.lists(NAMES, max_size=MAX_ROUTES - 1))
def test_generated_route_lists_name_exactly_the_routes_with_a_bad_provider(first: str, rest: list[str]) -> None:
    # given a model whose routes name the providers generated (each route with its own model name: no repeats)
    names = [first, *rest]
    routes = [{"provider": name, "providerModel": f"m{i}"} for i, name in enumerate(names)]
    # when its fields are checked
    found = problems({"routes": routes}, provider=first)
    # then exactly the routes naming an unknown or malformed provider are refused, each by its path
    bad = {f"capabilities.routes[{i}].provider" for i, name in enumerate(names) if name not in KNOWN}
    assert {f for f in found if f.endswith(".provider")} == bad
    assert set(found) == bad


@settings(max_examples=200)
@given(mapping=st.dictionaries(st.sampled_from(["steps", "seed", "style", "cfg", "size"]), TEXT))
def test_generated_mappings_accept_declared_params_to_distinct_valid_names_only(mapping: dict[str, str]) -> None:
    found = problems({"params": PARAMS, "routes": [{"provider": "kie", "params": mapping}]})
    for ours in mapping:
        if ours not in PARAMS:
            assert f"capabilities.routes[0].params.{ours}" in found
    if not found:
        assert set(mapping) <= set(PARAMS) and len(set(mapping.values())) == len(mapping)


async def test_upsert_model_refuses_a_route_to_an_unknown_provider_and_stores_nothing() -> None:
    fakes = Fakes()
    admin = principal_of(fakes.user(role=Role.ADMIN))
    with pytest.raises(InvalidInput) as caught:
        await catalogue.upsert_model(
            actor=admin,
            slug="flux-pro",
            name="Flux",
            provider="kie",
            kind=ModelKind.IMAGE,
            cost_credits=10,
            capabilities={"routes": [{"provider": "kie"}, {"provider": "fal"}]},
            is_active=True,
            known_providers=frozenset({"kie", "simulated"}),
            uow=fakes.uow,
            catalogue=fakes.catalogue,
        )
    assert [p.field for p in caught.value.fields] == ["capabilities.routes[1].provider"]
    assert fakes.db.models == {}


def test_the_catalogue_file_refuses_a_route_to_an_unknown_provider_by_its_path() -> None:
    document = {
        "version": 1,
        "models": [
            {
                "slug": "flux-pro",
                "name": "Flux",
                "provider": "kie",
                "kind": "image",
                "costCredits": 10,
                "capabilities": {"routes": [{"provider": "kie"}, {"provider": "fal"}]},
            }
        ],
    }
    with pytest.raises(InvalidInput) as caught:
        read_catalogue(document, known_providers=frozenset({"kie", "simulated"}))
    assert [p.field for p in caught.value.fields] == ["models[0].capabilities.routes[1].provider"]


def test_provider_limits_are_read_from_the_environment_and_malformed_ones_refused() -> None:
    from pydantic import ValidationError

    from domain.provider_health import ProviderLimit
    from infrastructure.settings import Settings

    settings = Settings(_env_file=None, provider_rate_limits="kie=12/10,fal=5/1", provider_concurrency="kie=50")  # type: ignore[call-arg]
    assert settings.provider_limits() == {
        "kie": ProviderLimit(rate=12, window_seconds=10, concurrency=50),
        "fal": ProviderLimit(rate=5, window_seconds=1),
        "replicate": ProviderLimit(rate=600, window_seconds=60),  # its own default (REPLICATE_RATE_LIMIT)
    }
    for bad in ("kie", "kie=0/10", "kie=5/0", "KIE=5/1", "kie=5/1/2", "kie=-1/1"):
        with pytest.raises(ValidationError):
            Settings(_env_file=None, provider_rate_limits=bad)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        Settings(_env_file=None, provider_concurrency="kie=0")  # type: ignore[call-arg]


def test_each_provider_has_one_submit_rate_kie_18_per_10_s_unless_configured() -> None:
    from domain.provider_health import ProviderLimit
    from infrastructure.settings import Settings

    # given no PROVIDER_RATE_LIMITS: the providers' own defaults are the one limit routed submission counts
    limits = Settings(_env_file=None).provider_limits()  # type: ignore[call-arg]
    assert limits["kie"] == ProviderLimit(rate=18, window_seconds=10)
    assert limits["fal"] == ProviderLimit(rate=20, window_seconds=10)
    # and KIE_RATE_LIMIT still sets KIE's, which PROVIDER_RATE_LIMITS overrides
    assert Settings(_env_file=None, kie_rate_limit=9).provider_limits()["kie"].rate == 9  # type: ignore[call-arg]
    both = Settings(_env_file=None, kie_rate_limit=9, provider_rate_limits="kie=3/1")  # type: ignore[call-arg]
    assert both.provider_limits()["kie"] == ProviderLimit(rate=3, window_seconds=1)
