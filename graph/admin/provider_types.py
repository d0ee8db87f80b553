"""GraphQL types of provider routing, for admins: a model's routes, a generation's attempts, provider health."""

from __future__ import annotations

from datetime import datetime

import strawberry

from domain import provider_attempts as da
from domain import provider_health as dh
from domain import provider_routes as dr
from graph.scalars import JSON

strawberry.enum(dh.CircuitState, name="CircuitState", description="A provider's circuit breaker.")
CircuitState = dh.CircuitState
strawberry.enum(da.AttemptOutcome, name="ProviderAttemptOutcome", description="How one provider route try ended.")
AttemptOutcome = da.AttemptOutcome


@strawberry.type(description="One provider that can run a model, in the order routes are tried.")
class ProviderRoute:
    index: int
    provider: str
    provider_model: str = strawberry.field(description="The provider's own name for the model.")
    params: JSON = strawberry.field(description="Our parameter names mapped to the provider's (others unchanged).")

    @classmethod
    def from_domain(cls, route: dr.ProviderRoute) -> ProviderRoute:
        return cls(
            index=route.index,
            provider=route.provider,
            provider_model=route.provider_model,
            params=JSON(dict(route.params)),
        )


@strawberry.type(description="One provider route tried (or skipped) while a generation was submitted.")
class ProviderAttempt:
    submit_attempt: int = strawberry.field(description="Which submit attempt of the generation (1-based).")
    route_index: int
    provider: str
    started_at: datetime
    finished_at: datetime
    outcome: AttemptOutcome
    error_code: str | None

    @classmethod
    def from_domain(cls, attempt: da.ProviderAttempt) -> ProviderAttempt:
        return cls(
            submit_attempt=attempt.submit_attempt,
            route_index=attempt.route_index,
            provider=attempt.provider,
            started_at=attempt.started_at,
            finished_at=attempt.finished_at,
            outcome=attempt.outcome,
            error_code=attempt.error_code,
        )


@strawberry.type(description="A provider's circuit and its recent submits, as every worker sees them.")
class ProviderHealth:
    provider: str
    circuit: CircuitState
    consecutive_failures: int
    recent_successes: int = strawberry.field(description="Submits it took in the health window.")
    recent_failures: int = strawberry.field(description="Submits that failed over (refused, down, timed out).")
    error_rate: float | None = strawberry.field(description="recentFailures / all recent submits; null: none.")
    open_until: datetime | None = strawberry.field(description="When an open circuit lets its next probe through.")
    running: int = strawberry.field(description="Generations it runs now.")

    @classmethod
    def from_domain(cls, health: dh.ProviderHealth) -> ProviderHealth:
        return cls(
            provider=health.provider,
            circuit=health.state,
            consecutive_failures=health.consecutive_failures,
            recent_successes=health.recent_successes,
            recent_failures=health.recent_failures,
            error_rate=health.error_rate,
            open_until=health.open_until,
            running=health.running,
        )
