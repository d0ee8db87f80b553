"""Provider registry: name -> `Provider`, built once per process from settings.

Adding a provider is one new module exposing `from_settings(...)` plus one line
in `FACTORIES`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

import httpx

from domain.ports import Provider
from infrastructure.providers import fal, kie, replicate, simulated
from infrastructure.settings import Settings


class ProviderFactory(Protocol):
    def __call__(self, settings: Settings, *, http_client: httpx.AsyncClient) -> Provider: ...


FACTORIES: tuple[ProviderFactory, ...] = (
    simulated.from_settings,
    kie.from_settings,
    replicate.from_settings,
    fal.from_settings,
)


class ProviderRegistry:
    """Implements `domain.ports.ProviderRegistry`."""

    def __init__(self, providers: Iterable[Provider] = ()) -> None:
        self._providers: dict[str, Provider] = {}
        for provider in providers:
            self.register(provider)

    def register(self, provider: Provider) -> None:
        if provider.name in self._providers:
            raise ValueError(f"provider {provider.name!r} is registered twice")
        self._providers[provider.name] = provider

    def get(self, name: str) -> Provider:
        try:
            return self._providers[name]
        except KeyError:
            known = ", ".join(sorted(self._providers)) or "none"
            raise KeyError(f"unknown provider {name!r} (registered: {known})") from None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._providers))

    def as_mapping(self) -> Mapping[str, Provider]:
        return dict(self._providers)


def build_providers(settings: Settings, http_client: httpx.AsyncClient) -> ProviderRegistry:
    """Every provider is registered; one without credentials raises PROVIDER_NOT_CONFIGURED when used.

    No adapter limits its own submits: each provider's rate is counted once, by routed submission.
    """
    return ProviderRegistry(factory(settings, http_client=http_client) for factory in FACTORIES)
