"""Where a claimed webhook delivery goes: the endpoint's current URL, or a stop when it is disabled or gone."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from domain.webhook_endpoints import WebhookEndpoint, delivery_destination

SAVED = "https://saved.example/hook"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def endpoint(*, enabled: bool) -> WebhookEndpoint:
    return WebhookEndpoint(uuid.uuid4(), uuid.uuid4(), "https://now.example/hook", frozenset(), "", enabled, NOW, NOW)


def test_a_generations_own_webhook_goes_to_its_saved_url() -> None:
    assert delivery_destination(SAVED, None, None) == (SAVED, False)


def test_an_endpoint_delivery_follows_the_endpoints_current_url() -> None:
    current = endpoint(enabled=True)
    assert delivery_destination(SAVED, current.id, current) == (current.url, False)


def test_a_disabled_or_deleted_endpoint_stops_its_delivery() -> None:
    disabled = endpoint(enabled=False)
    assert delivery_destination(SAVED, disabled.id, disabled) == (disabled.url, True)
    assert delivery_destination(SAVED, uuid.uuid4(), None) == (SAVED, True)
