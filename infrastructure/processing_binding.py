"""The worker use cases' policy from Settings, bound once per process by the container.

Every task of a process calls the processing use cases (submission, finalization, sweeps)
with the same `ProcessingPorts` and `ProcessingPolicy`: the container builds both when it
opens (Container.processing, Container.policy) instead of each task call rebuilding them.
"""

from __future__ import annotations

from domain.use_cases.processing import ProcessingPolicy
from infrastructure.settings import Settings

#: Without a broker that redelivers, a presumed-dead submitter is only retried by the
#: poller: wait comfortably longer than a provider call may take.
EMBEDDED_LEASE_FLOOR_SECONDS = 60.0


def processing_policy(settings: Settings, *, embedded: bool) -> ProcessingPolicy:
    if embedded:
        lease = max(EMBEDDED_LEASE_FLOOR_SECONDS, 2 * settings.provider_timeout_seconds + 30)
    else:
        # Below the redelivery timeout: a message redelivered because its worker died
        # finds the dead worker's lease already run out and takes over at once.
        lease = 0.9 * settings.task_idle_timeout_ms / 1000
    return ProcessingPolicy(
        max_attempts=settings.submit_max_attempts,
        retry_base_seconds=settings.retry_base_seconds,
        retry_max_seconds=settings.retry_max_seconds,
        poll_interval_seconds=settings.poll_interval_seconds,
        lease_seconds=lease,
        max_output_bytes=settings.upload_max_bytes,
        input_url_ttl_seconds=settings.presign_expires_seconds,
        callback_base_url=settings.public_base_url if settings.kie_callback_secret else None,
    )
