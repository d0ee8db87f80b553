"""Provider registry wiring from settings."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from domain.ports import ProviderError, ProviderJob
from infrastructure.providers.fal import FalProvider
from infrastructure.providers.http import build_http_client
from infrastructure.providers.kie import KieProvider
from infrastructure.providers.registry import ProviderRegistry, build_providers
from infrastructure.providers.replicate import ReplicateProvider
from infrastructure.providers.simulated import SimulatedProvider
from infrastructure.settings import Settings


def settings(**overrides: Any) -> Settings:
    return Settings(_env_file=None, **overrides)


async def test_simulated_and_kie_are_always_registered(http_client: httpx.AsyncClient) -> None:
    registry = build_providers(settings(simulated_steps=2), http_client)

    assert {"fal", "kie", "replicate", "simulated"} <= set(registry.names)
    assert registry.names == tuple(sorted(registry.names))
    assert isinstance(registry.get("simulated"), SimulatedProvider)
    assert isinstance(registry.get("fal"), FalProvider)
    assert isinstance(registry.get("kie"), KieProvider)
    assert isinstance(registry.get("replicate"), ReplicateProvider)


async def test_unknown_provider_names_the_known_ones(http_client: httpx.AsyncClient) -> None:
    registry = build_providers(settings(), http_client)

    with pytest.raises(KeyError, match="unknown provider 'midjourney'.*kie, .*simulated"):
        registry.get("midjourney")


@pytest.mark.parametrize("name", ["kie", "replicate"])
async def test_without_credentials_a_provider_is_registered_but_not_configured(
    http_client: httpx.AsyncClient, name: str
) -> None:
    provider = build_providers(settings(kie_api_key="", replicate_api_token=""), http_client).get(name)
    job = ProviderJob(generation_id=uuid.uuid4(), provider_model="owner/m", prompt="p", params={})

    with pytest.raises(ProviderError) as caught:
        await provider.submit(job)

    assert (caught.value.code, caught.value.retryable) == ("PROVIDER_NOT_CONFIGURED", False)


async def test_fal_without_key_is_registered_but_not_configured(http_client: httpx.AsyncClient) -> None:
    fal = build_providers(settings(fal_key=""), http_client).get("fal")
    job = ProviderJob(generation_id=uuid.uuid4(), provider_model="fal-ai/flux/dev", prompt="p", params={})

    with pytest.raises(ProviderError) as caught:
        await fal.submit(job)

    assert (caught.value.code, caught.value.retryable) == ("PROVIDER_NOT_CONFIGURED", False)


@pytest.mark.parametrize("field", ["fal_queue_base_url", "fal_jwks_url"])
@pytest.mark.parametrize(
    "value", ["ftp://queue.fal.run", "queue.fal.run", "https://", "https://h/x?a=b", "https://h/#f"]
)
def test_fal_urls_must_be_plain_http_urls(field: str, value: str) -> None:
    with pytest.raises(ValueError):
        settings(**{field: value})


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        ProviderRegistry([SimulatedProvider(), SimulatedProvider()])


async def test_shared_http_client_has_timeouts_and_limits() -> None:
    client = build_http_client(settings(provider_timeout_seconds=12.5))
    try:
        assert client.timeout.read == 12.5
        assert client.timeout.connect == 10.0
        assert client.follow_redirects is True
    finally:
        await client.aclose()
