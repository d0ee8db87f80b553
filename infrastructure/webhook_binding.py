"""The webhook use cases' policies from Settings (part of the composition root)."""

from __future__ import annotations

from datetime import timedelta

from domain.use_cases.rate_limits import RateRule
from domain.use_cases.webhook_deliveries import DeliveryPolicy
from domain.use_cases.webhook_endpoints import EndpointPolicy
from domain.use_cases.webhook_outbox import OutboxPolicy
from domain.webhooks import RETRY_DELAYS
from infrastructure.settings import Settings


def outbox_policy(settings: Settings) -> OutboxPolicy:
    return OutboxPolicy(
        progress_interval=timedelta(seconds=settings.webhook_progress_interval_seconds),
        dispatch_hold=timedelta(seconds=settings.webhook_dispatch_hold_seconds),
    )


def delivery_policy(settings: Settings) -> DeliveryPolicy:
    configured = tuple(timedelta(seconds=s) for s in settings.webhook_retry_delays_seconds)
    return DeliveryPolicy(
        delays=configured or RETRY_DELAYS,
        lease=timedelta(seconds=settings.webhook_claim_seconds),
        dispatch_hold=timedelta(seconds=settings.webhook_dispatch_hold_seconds),
        retention=timedelta(days=settings.webhook_log_retention_days),
        redeliver_rate=RateRule(settings.rate_limit_webhook_redeliver, settings.rate_limit_window_seconds),
    )


def endpoint_policy(settings: Settings) -> EndpointPolicy:
    return EndpointPolicy(
        max_endpoints=settings.webhook_max_endpoints,
        rate=RateRule(settings.rate_limit_webhooks, settings.rate_limit_window_seconds),
    )
