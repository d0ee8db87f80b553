"""A provider's completion call: verify it, then hand it to the finalize path (never act on it inline)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from domain.errors import NotFound, ServiceUnavailable
from domain.generations import Generation, GenerationStatus
from domain.ports import AsyncCallbackVerifier, JobQueue, ProviderRegistry
from domain.provider_callbacks import named_generation
from domain.repositories import UnitOfWorkFactory
from domain.use_cases.adoption import awaits_adoption

CALLBACK_TASK = "handle_provider_callback"
#: Seconds a provider is asked to wait before delivering again a callback that came during its job's submit.
SUBMIT_UNDER_WAY_RETRY_SECONDS = 5

log = logging.getLogger("genhub.processing")


async def receive_callback(
    provider_name: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    providers: ProviderRegistry,
    jobs: JobQueue,
    uow: UnitOfWorkFactory,
    query: Mapping[str, str] | None = None,
    callback_key: str = "",
    previous_keys: Sequence[str] = (),
) -> str:
    """Enqueue the finalize check for the task the callback names; returns that task id.

    Raises KeyError (no such provider), PermissionError (signature or timestamp not
    genuine), ValueError (malformed body), ServiceUnavailable (the provider's signing keys
    cannot be fetched yet, or the callback names under our MAC a generation whose submit is
    still under way: its job may be the one that submit is waiting for, so the provider is
    asked to deliver it again) or NotFound (a genuine callback for a task no generation of
    ours holds: logged here, once per call, and nothing queued). The payload
    is only a hint: the worker asks the provider itself, so a forged or replayed body
    cannot finish anything.
    """
    provider = providers.get(provider_name)
    if isinstance(provider, AsyncCallbackVerifier):
        # e.g. fal: its published signing keys are fetched, and the URL's query names the app
        callback = await provider.verify_callback(headers, body, query or {})
    else:
        callback = provider.parse_callback(headers, body)
    waiting = None
    async with uow() as unit:
        generation = await unit.generations.find_by_provider_task(provider.name, callback.external_id)
        named = (
            named_generation(callback_key, provider.name, query or {}, previous_keys) if generation is None else None
        )
        if named is not None:
            waiting = await unit.generations.get(named)
    if waiting is not None and awaits_adoption(waiting, provider.name):
        log.info("callback from %s for task %r names %s, waiting for it", provider.name, callback.external_id, named)
        await jobs.enqueue(
            CALLBACK_TASK, provider=provider.name, external_id=callback.external_id, generation_id=str(waiting.id)
        )
        return callback.external_id
    if generation is None and waiting is not None and _submit_under_way(waiting):
        # A fast job's callback while its create call still waits for an answer (or before its task id was
        # committed): a 404 could end the provider's deliveries, and the submit then find no job.
        log.info(
            "callback from %s for task %r names %s, still submitting: asked again",
            provider.name,
            callback.external_id[:128],
            named,
        )
        raise ServiceUnavailable("provider submit", retry_after_seconds=SUBMIT_UNDER_WAY_RETRY_SECONDS)
    if generation is None:
        log.warning("callback from %s for unknown task %r refused", provider.name, callback.external_id[:128])
        raise NotFound("provider task")
    await jobs.enqueue(CALLBACK_TASK, provider=provider.name, external_id=callback.external_id)
    return callback.external_id


def _submit_under_way(generation: Generation) -> bool:
    """A generation being submitted (or backing off between attempts) without a task id, and not waiting on an
    uncertain route at another provider: the callback's job may be what its submit is waiting for."""
    return (
        generation.status is GenerationStatus.SUBMITTING
        and generation.provider_task_id is None
        and generation.uncertain_route is None
    )
