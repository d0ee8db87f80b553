"""Look up an uncertain submit's job at a provider that lists its jobs (`JobLookup`: Replicate), for routed
submission (domain/use_cases/routed_submission.py): found, proven absent, or inconclusive.

The list is read back to the uncertain submit (the one that set the uncertain route, `uncertain_since`, less
a margin for the clocks), never to the generation's creation alone, nor to an older failure there that started
nothing. Jobs another generation holds are passed over; one left is the generation's; several left, or a list
not read back that far, take nothing and send nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from domain.generations import Generation
from domain.ports import JobLookup, ProviderError, ProviderJob
from domain.provider_attempts import AttemptOutcome
from domain.use_cases.processing import ProcessingPolicy, ProcessingPorts

log = logging.getLogger("genhub.processing")

LOOKUP_INCONCLUSIVE = "PROVIDER_LOOKUP_INCONCLUSIVE"
#: More matching jobs than this in a provider's list: the lookup is inconclusive without reading their holders.
MAX_CANDIDATES = 8
#: How far before the uncertain submit a provider's list is read: its clock and ours may disagree.
LOOKUP_MARGIN = timedelta(minutes=2)


async def look_up(
    ports: ProcessingPorts,
    policy: ProcessingPolicy,
    provider: JobLookup,
    name: str,
    job: ProviderJob,
    generation: Generation,
) -> str | ProviderError | None:
    """The earlier job of `generation` at `provider`; None only when the list proves there is none.

    Jobs other generations hold are passed over. Several left, or a list not read back to the uncertain
    create, is `LOOKUP_INCONCLUSIVE`: nothing is taken, nothing sent, and the lookup is tried again (bounded
    by the deadline). A failed lookup is a retryable error too: the route is not asked again while it
    cannot be looked at.
    """
    since = await _uncertain_since(ports, name, generation)
    try:
        search = await provider.find_job(job, since=since)
    except ProviderError as exc:
        log.warning("could not look up %s's earlier job: %s", generation.id, exc)
        return ProviderError(exc.code, exc.message, retryable=True, retry_after=exc.retry_after)
    wait = policy.uncertain_grace_seconds
    if len(search.candidates) > MAX_CANDIDATES:
        return _inconclusive(generation, f"{len(search.candidates)} jobs match", wait)
    free: list[str] = []
    async with ports.uow() as uow:
        for candidate in dict.fromkeys(search.candidates):
            holder = await uow.generations.find_by_provider_task(name, candidate)
            if holder is None or holder.id == generation.id:
                free.append(candidate)
    if len(free) > 1:
        return _inconclusive(generation, f"{len(free)} jobs nobody holds match", wait)
    if free:
        return free[0]
    if not search.complete:
        return _inconclusive(generation, "the list was not read back to its submit", wait)
    return None


async def _uncertain_since(ports: ProcessingPorts, name: str, generation: Generation) -> datetime:
    """Since when the list is read: the submit that set the uncertain route (`uncertain_since`), less
    `LOOKUP_MARGIN` for the clocks' skew. Rows from before it was recorded: the generation's first failed
    attempt at `name` (the uncertain create is that one or a later one); its creation without a record."""
    if generation.uncertain_since is not None:
        return generation.uncertain_since - LOOKUP_MARGIN
    began = generation.created_at
    try:
        async with ports.uow() as uow:
            attempts = (await uow.generations.attempts_of([generation.id])).get(generation.id, [])
    except Exception:
        log.exception("could not read %s's attempts; its lookup reads back to its creation", generation.id)
        attempts = []
    failed = [a.started_at for a in attempts if a.provider == name and a.outcome is AttemptOutcome.FAILED]
    if failed:
        began = max(began, min(failed))
    return began - LOOKUP_MARGIN


def _inconclusive(generation: Generation, why: str, wait: float) -> ProviderError:
    log.warning("generation %s: its earlier job is neither found nor proven absent (%s)", generation.id, why)
    return ProviderError(LOOKUP_INCONCLUSIVE, f"The lookup was inconclusive: {why}.", retryable=True, retry_after=wait)
