"""Provider health: each provider's circuit (closed, open, half-open) and its recent submit outcomes.

A circuit opens after `failures_to_open` consecutive failed submits (a refusal, an outage,
a timeout: what fails a route over); while open, routes to that provider are skipped. After
`cooldown_seconds` it is half-open: one submit (the probe) is let through; its success closes
the circuit, its failure opens it for another cool-down. A success at any time closes it.
A permanent refusal (the provider is up but refused the request) counts as neither.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


class CircuitState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class CircuitPolicy:
    failures_to_open: int = 5
    cooldown_seconds: float = 30.0
    #: Recent outcomes (the error rate) are counted over this many seconds.
    window_seconds: int = 300


@dataclass(frozen=True, slots=True)
class ProviderLimit:
    """What a provider may be given, checked before its route is asked (None: no limit)."""

    #: New submits per `window_seconds`, counted across every worker.
    rate: int | None = None
    window_seconds: int = 1
    #: Generations it runs at once (PROCESSING there).
    concurrency: int | None = None


@dataclass(frozen=True, slots=True)
class ProviderHealth:
    provider: str
    state: CircuitState
    consecutive_failures: int
    recent_successes: int
    recent_failures: int
    #: When an open circuit lets its next probe through.
    open_until: datetime | None = None
    #: Generations the provider runs now (PROCESSING there).
    running: int = 0

    @property
    def error_rate(self) -> float | None:
        total = self.recent_successes + self.recent_failures
        return self.recent_failures / total if total else None


class NoCircuits:
    """A `CircuitBreaker` that never opens and remembers nothing (no breaker configured)."""

    async def allow(self, provider: str) -> bool:
        return True

    async def record(self, provider: str, *, ok: bool) -> None:
        return None

    async def health(self, providers: Sequence[str]) -> list[ProviderHealth]:
        return [ProviderHealth(p, CircuitState.CLOSED, 0, 0, 0) for p in providers]
