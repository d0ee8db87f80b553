"""A provider's completion call: verify it, then hand it to the finalize path (never act on it inline)."""

from __future__ import annotations

from collections.abc import Mapping

from domain.ports import JobQueue, ProviderRegistry

CALLBACK_TASK = "handle_provider_callback"


async def receive_callback(
    provider_name: str, headers: Mapping[str, str], body: bytes, *, providers: ProviderRegistry, jobs: JobQueue
) -> str:
    """Enqueue the finalize check for the task the callback names; returns that task id.

    Raises KeyError (no such provider), PermissionError (signature or timestamp not
    genuine) or ValueError (malformed body). The payload is only a hint: the worker
    asks the provider itself, so a forged or replayed body cannot finish anything.
    """
    provider = providers.get(provider_name)
    callback = provider.parse_callback(headers, body)
    await jobs.enqueue(CALLBACK_TASK, provider=provider.name, external_id=callback.external_id)
    return callback.external_id
