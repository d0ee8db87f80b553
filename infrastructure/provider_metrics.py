"""Provider calls measured: each call's latency and its errors by code (the series are in `infrastructure.metrics`)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from domain.ports import AsyncCallbackVerifier, Provider, ProviderCallback, ProviderError, ProviderJob, ProviderStatus
from infrastructure.metrics import PROVIDER_DURATION, PROVIDER_ERRORS
from infrastructure.providers.registry import ProviderRegistry


class InstrumentedProvider:
    """Wraps a Provider: latency of every call and errors by code; everything else is delegated."""

    def __init__(self, inner: Provider) -> None:
        self._inner = inner
        self.name = inner.name
        self.supports_cancel = inner.supports_cancel

    def __getattr__(self, item: str) -> Any:
        return getattr(self._inner, item)

    @contextlib.contextmanager
    def _timed(self, call: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        except ProviderError as exc:
            PROVIDER_ERRORS.labels(self.name, call, exc.code).inc()
            raise
        except Exception as exc:
            PROVIDER_ERRORS.labels(self.name, call, type(exc).__name__).inc()
            raise
        finally:
            PROVIDER_DURATION.labels(self.name, call).observe(time.perf_counter() - started)

    async def submit(self, job: ProviderJob) -> str:
        with self._timed("submit"):
            return await self._inner.submit(job)

    async def status(self, external_id: str) -> ProviderStatus:
        with self._timed("status"):
            return await self._inner.status(external_id)

    async def cancel(self, external_id: str) -> None:
        with self._timed("cancel"):
            await self._inner.cancel(external_id)

    async def download(self, url: str) -> AsyncIterator[bytes]:
        with self._timed("download"):
            async for chunk in self._inner.download(url):
                yield chunk

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> ProviderCallback:
        with self._timed("callback"):
            return self._inner.parse_callback(headers, body)

    async def verify_callback(
        self, headers: Mapping[str, str], body: bytes, query: Mapping[str, str]
    ) -> ProviderCallback:
        with self._timed("callback"):
            if isinstance(self._inner, AsyncCallbackVerifier):
                return await self._inner.verify_callback(headers, body, query)
            return self._inner.parse_callback(headers, body)


def instrument_providers(registry: ProviderRegistry) -> ProviderRegistry:
    """The same registry with every provider wrapped in InstrumentedProvider."""
    return ProviderRegistry(InstrumentedProvider(p) for p in registry.as_mapping().values())
