"""Webhook endpoints a user registers, the secrets that sign their deliveries, and the rules on both.

An endpoint receives the messages of the event types it asks for, about every generation of
its user. A generation may also name a webhook of its own (`GenerateInput.webhook`): signed
with the user's default signing secret, which is not an endpoint's. Secrets are shown once;
a rotation keeps the previous secret signing beside the new one for an overlap (capped), so a
receiver can switch without losing messages. Only the newest previous secret overlaps: a
second rotation inside the overlap retires the older one at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.errors import InvalidInput, Problems
from domain.text import text_problem
from domain.webhooks import WebhookEvent

#: Endpoints one user may register (docs/clients.md says so).
MAX_ENDPOINTS_PER_USER = 10
MAX_URL_LENGTH = 2048
MAX_DESCRIPTION_LENGTH = 200
DEFAULT_OVERLAP = timedelta(hours=24)
MAX_OVERLAP = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class WebhookEndpoint:
    id: uuid.UUID
    user_id: uuid.UUID
    url: str
    events: frozenset[WebhookEvent]
    description: str
    enabled: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class GenerationWebhook:
    """The webhook one generation asked for at its start: its messages go to `url` alone."""

    generation_id: uuid.UUID
    user_id: uuid.UUID
    url: str
    events: frozenset[WebhookEvent]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SecretRotation:
    """A secret just drawn (shown this once) and until when the previous one still signs (None: there was none)."""

    secret: str
    previous_expires_at: datetime | None


def delivery_destination(
    saved_url: str, endpoint_id: uuid.UUID | None, endpoint: WebhookEndpoint | None
) -> tuple[str, bool]:
    """Where a claimed delivery goes, and whether it stops instead.

    A delivery to an endpoint follows the endpoint's current URL and stops once the endpoint is disabled or
    deleted; a generation's own webhook goes to the URL saved with it.
    """
    if endpoint_id is None:
        return saved_url, False
    if endpoint is None:
        return saved_url, True
    return endpoint.url, not endpoint.enabled


def events_of(values: Iterable[str], field: str, problems: Problems) -> frozenset[WebhookEvent]:
    """The event types named (`generation.started`, or the enum's name `GENERATION_STARTED`); at least one."""
    found: set[WebhookEvent] = set()
    by_name = {e.name: e for e in WebhookEvent}
    for value in values:
        event = by_name.get(value) if value in by_name else _by_value(value)
        if event is None:
            problems.add(field, "must name known event types only")
            return frozenset()
        found.add(event)
    if not found:
        problems.add(field, "must name at least one event type")
    return frozenset(found)


def _by_value(value: str) -> WebhookEvent | None:
    try:
        return WebhookEvent(value)
    except ValueError:
        return None


def check_url_text(url: str, field: str, problems: Problems) -> None:
    """What the domain knows of a URL before the destination check (scheme, host, addresses) looks at it."""
    if not url or len(url) > MAX_URL_LENGTH:
        problems.add(field, f"must be 1-{MAX_URL_LENGTH} characters")
    elif (why := text_problem(url)) is not None:
        problems.add(field, why)
    elif any(ch.isspace() or ord(ch) < 0x20 for ch in url):
        problems.add(field, "must not contain spaces or control characters")


def check_description(description: str, field: str, problems: Problems) -> None:
    if len(description) > MAX_DESCRIPTION_LENGTH:
        problems.add(field, f"must be at most {MAX_DESCRIPTION_LENGTH} characters")
    elif (why := text_problem(description)) is not None:
        problems.add(field, why)


def overlap_of(minutes: int | None) -> timedelta:
    """How long a rotated secret keeps signing: the default without `minutes`, 0 to MAX_OVERLAP with."""
    if minutes is None:
        return DEFAULT_OVERLAP
    most = int(MAX_OVERLAP.total_seconds() // 60)
    if not 0 <= minutes <= most:
        raise InvalidInput.single("overlapMinutes", f"must be between 0 and {most}")
    return timedelta(minutes=minutes)
