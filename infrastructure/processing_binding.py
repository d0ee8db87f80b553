"""The worker use cases' policy from Settings, bound once per process by the container.

Every task of a process calls the processing use cases (submission, finalization, sweeps)
with the same `ProcessingPorts` and `ProcessingPolicy`: the container builds both when it
opens (Container.processing, Container.policy) instead of each task call rebuilding them.
"""

from __future__ import annotations

from domain.media import MediaLimits
from domain.use_cases.processing import ProcessingPolicy
from domain.use_cases.thumbnails import ThumbnailPolicy
from infrastructure.settings import Settings
from infrastructure.webhook_binding import outbox_policy


def generation_lease_seconds(settings: Settings, *, embedded: bool) -> float:
    """How long a generation stays held by a worker that stopped renewing its lease.

    With Redis, one renewal interval shorter than the task message's lease: the two are
    renewed separately, so a message redelivered because its worker died finds the
    generation's lease already run out and takes over at once. Embedded, nothing
    redelivers (the poller retries), so the whole lease.
    """
    if embedded:
        return settings.task_lease_seconds
    return settings.task_lease_seconds - settings.task_lease_renew_seconds


def processing_policy(settings: Settings, *, embedded: bool) -> ProcessingPolicy:
    return ProcessingPolicy(
        max_attempts=settings.submit_max_attempts,
        retry_base_seconds=settings.retry_base_seconds,
        retry_max_seconds=settings.retry_max_seconds,
        poll_interval_seconds=settings.poll_interval_seconds,
        lease_seconds=generation_lease_seconds(settings, embedded=embedded),
        lease_renew_seconds=settings.task_lease_renew_seconds,
        media_limits=media_limits(settings),
        input_url_ttl_seconds=settings.presign_expires_seconds,
        callback_base_url=settings.public_base_url if callbacks_verified(settings) else None,
        callback_key=settings.purpose_secret("provider-callback"),
        callback_previous_keys=settings.previous_purpose_secrets("provider-callback"),
        uncertain_grace_seconds=settings.provider_uncertain_grace_seconds,
        webhooks=outbox_policy(settings),
        provider_limits=settings.provider_limits(),
        provider_rate_wait_seconds=settings.provider_rate_wait_seconds,
        slot_lease_seconds=settings.provider_slot_lease_seconds,
    )


def callbacks_verified(settings: Settings) -> bool:
    """Whether any provider can verify a callback: only then are providers told where to call back.

    Each provider also asks for callbacks only when its own secret is set.
    """
    return bool(settings.kie_callback_secret or settings.replicate_webhook_secret)


def media_limits(settings: Settings) -> MediaLimits:
    """Bounds on media from a provider, set apart from those on uploads."""
    return MediaLimits(
        max_bytes=settings.output_max_bytes,
        max_pixels=settings.media_max_pixels,
        max_side=settings.media_max_side,
        max_video_seconds=settings.media_max_video_seconds,
        probe_timeout_seconds=settings.media_probe_timeout_seconds,
    )


def thumbnail_policy(settings: Settings) -> ThumbnailPolicy:
    return ThumbnailPolicy(limits=media_limits(settings), grace_seconds=settings.thumbnail_grace_seconds)
