"""The process's webhook destinations and sender, built from Settings (part of the composition root)."""

from __future__ import annotations

import contextlib

from infrastructure.settings import Settings
from infrastructure.webhooks.addresses import parse_networks
from infrastructure.webhooks.destinations import ResolvingDestinations, warn_if_allowlisted_in_production
from infrastructure.webhooks.sender import HttpWebhookSender, build_client


def build_destinations(settings: Settings) -> ResolvingDestinations:
    allowed = parse_networks(settings.webhook_allowed_networks)
    warn_if_allowlisted_in_production(production=settings.is_production, allowed_networks=allowed)
    return ResolvingDestinations(
        allow_http=settings.webhook_http_allowed,
        allowed_networks=allowed,
        dns_timeout_seconds=settings.webhook_dns_timeout_seconds,
    )


def build_sender(settings: Settings, destinations: ResolvingDestinations) -> HttpWebhookSender:
    client = build_client(
        connect_timeout=min(settings.webhook_connect_timeout_seconds, settings.webhook_timeout_seconds),
        timeout=settings.webhook_timeout_seconds,
        concurrency=settings.webhook_concurrency,
    )
    return HttpWebhookSender(
        client,
        destinations,
        timeout_seconds=settings.webhook_timeout_seconds,
        max_response_bytes=settings.webhook_max_response_bytes,
        concurrency=settings.webhook_concurrency,
    )


def open_webhooks(
    settings: Settings, stack: contextlib.AsyncExitStack
) -> tuple[ResolvingDestinations, HttpWebhookSender]:
    """One destinations check and one sender per process (the sender's concurrency bound is per process)."""
    destinations = build_destinations(settings)
    sender = build_sender(settings, destinations)
    stack.push_async_callback(sender.aclose)
    return destinations, sender
