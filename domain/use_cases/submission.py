"""Submit a generation to its provider: QUEUED -> SUBMITTING -> PROCESSING, with retries.

The claim (QUEUED/SUBMITTING -> SUBMITTING) bumps `submit_attempts` and takes a lease
in `next_attempt_at`, renewed while the provider call runs (domain/use_cases/leases.py);
every later write is fenced on that attempt number, so a submitter that lost its lease
(presumed dead, another took over) cannot overwrite the newer attempt's outcome.
The claim is one conditional write on the database's clock (no live lease or backoff,
deadline ahead, attempts left); a generation whose every attempt was claimed and none
finished (its submitters died) fails with its hold released instead of a further attempt.
An attempt that asked no provider (every route skipped at our own limits or an open circuit)
gives its claim back (`submit_attempts` as before, fenced on the claim's token too): a full
provider or an unreachable slot store makes a generation wait, bounded by its deadline, not fail. Refused by a
full provider, it stands in that provider's waiting line and tries again every few seconds
(domain/use_cases/provider_slots.py); every other outcome of the attempt takes it out of every line.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from domain.catalogue import AiModel
from domain.chunks import ChunkStatus
from domain.errors import ProviderTaskTaken
from domain.generations import Generation, GenerationStatus
from domain.ports import CallbackBinding, Provider, ProviderError, ProviderJob
from domain.provider_callbacks import callback_query
from domain.provider_routes import ProviderRoute
from domain.retries import backoff_seconds
from domain.use_cases import webhook_outbox as outbox
from domain.use_cases.generation_events import changed, publish_all
from domain.use_cases.leases import renewed
from domain.use_cases.processing import (
    ATTEMPT_PARAM,
    SUBMITTABLE,
    ProcessingPolicy,
    ProcessingPorts,
    fail,
    free_slot,
    leave_lines,
    model_of,
)
from domain.use_cases.provider_slots import full_retry_seconds
from domain.use_cases.routed_submission import RoutedSubmit, submit_routes
from domain.use_cases.uncertain_lookup import LOOKUP_INCONCLUSIVE
from domain.use_cases.webhook_outbox import OutboxPolicy
from domain.webhook_messages import Dispatch

log = logging.getLogger("genhub.processing")

SUBMITTING_ONLY = frozenset({GenerationStatus.SUBMITTING})
#: A job a lookup found was recorded for another generation meanwhile (ProviderTaskTaken): looked up again later.
TASK_TAKEN = "PROVIDER_TASK_TAKEN"


async def submit(generation_id: uuid.UUID, *, ports: ProcessingPorts, policy: ProcessingPolicy) -> None:
    now = ports.clock.now()
    token = uuid.uuid4()
    async with ports.uow() as uow:
        current = await uow.generations.get(generation_id)
        if current is None or current.status not in SUBMITTABLE:
            return  # already submitted, finished, or unknown: a duplicate delivery
        # The read above only names the generation: whether it is free (no live lease, no
        # backoff, deadline ahead, attempts left) is decided by the claim's own conditional
        # write, on the database's clock, so a renewal between the two cannot be missed.
        claimed = await uow.generations.claim_submit(
            current.id, token=token, at=now, lease=policy.lease, max_attempts=policy.max_attempts
        )
        if claimed is not None:
            chunk_ids = (await uow.generations.inputs_of([current.id])).get(current.id, [])
            chunks = {c.id: c for c in await uow.chunks.get_many(chunk_ids)}
            await uow.commit()
    if claimed is None:
        if current.submit_attempts >= policy.max_attempts and not _waiting(current, now):
            await _exhausted(ports, current, policy.webhooks)
        return  # held by a live submitter, backing off, past its deadline, or claimed by another
    attempt = claimed.submit_attempts
    if current.status is not GenerationStatus.SUBMITTING:
        await publish_all(ports.publisher, [changed(claimed, current.status, now)])
    try:
        # The provider calls are not cut short when the lease is lost: a task id is needed to
        # cancel the orphan (_submitted), and every write below is fenced on the attempt.
        async with renewed(ports, policy, claimed.id, token):
            model = await model_of(ports, claimed.model_id)
            input_keys = []
            for chunk_id in chunk_ids:
                chunk = chunks.get(chunk_id)
                if chunk is None or chunk.status is not ChunkStatus.READY:
                    raise ProviderError("INPUT_MISSING", f"Input chunk {chunk_id} is gone.", retryable=False)
                input_keys.append(chunk.object_key)
            input_urls = [
                (await ports.storage.presign_get(key, expires_in=policy.input_url_ttl_seconds)).url
                for key in input_keys
            ]
            routed = await submit_routes(
                ports,
                policy,
                claimed,
                model,
                attempt,
                lambda route, provider: _job(claimed, model, route, provider, attempt, input_urls, policy),
            )
            skipping_since = await _record(ports, routed)
    except ProviderError as exc:
        await _failed(ports, policy, claimed, token, attempt, exc)
        return
    except Exception:
        # A bug or an unreachable dependency: back off like a transient error, and let the task log it. It waits
        # for no provider's slot, so it stands in no line.
        await leave_lines(ports, claimed.id)
        await _failed(
            ports, policy, claimed, token, attempt, ProviderError("SUBMIT_ERROR", "unexpected", retryable=True)
        )
        raise
    # Still waiting for a full provider (every route skipped, one at least for being full): it keeps its place in
    # those lines only. Any other outcome (a provider took it or was asked, it failed) leaves every line.
    waits_in = frozenset(routed.lines) if routed.provider is None and routed.nothing_asked else frozenset[str]()
    await leave_lines(ports, claimed.id, keep=waits_in)
    outcome = _Outcome()
    try:
        if routed.provider is None or routed.external_id is None:
            assert routed.error is not None
            keeps_slot = await _failed(
                ports,
                policy,
                claimed,
                token,
                attempt,
                routed.error,
                uncertain=routed.uncertain,
                uncertain_at=routed.uncertain_at,
                looks_up=routed.looks_up,
                route_gone=routed.route_gone or routed.awaits_callback,
                # An uncertain submit is not counted either: its wait for the job is bounded by the deadline.
                counted=not routed.nothing_asked and routed.uncertain is None,
                skipping_since=skipping_since,
                grace=routed.error.code == LOOKUP_INCONCLUSIVE,
                in_line=bool(waits_in),
            )
            outcome.written = True
            if not keeps_slot:
                await free_slot(ports, routed.slot, claimed.id, token=token)
            return
        try:
            updated, sends, at = await _submitted(
                ports, claimed, token, attempt, routed.provider, routed.external_id, policy, outcome
            )
        except ProviderTaskTaken as exc:
            # A job found by a lookup was taken by another generation meanwhile: never two on one job.
            log.warning("generation %s: %s", claimed.id, exc)
            taken = ProviderError(TASK_TAKEN, str(exc), retryable=True, retry_after=policy.uncertain_grace_seconds)
            keeps_slot = await _failed(ports, policy, claimed, token, attempt, taken, counted=False, grace=True)
            outcome.written = True
            if not keeps_slot:
                await free_slot(ports, routed.slot, claimed.id, token=token)
            return
        outcome.written = True
        if updated is None:
            current = await _current(ports, claimed)
            if current is not None and current.provider_task_id == routed.external_id:
                return  # its callback came first and this very task was adopted: the slot is its own
            if not (current is not None and _runs_at(current, routed.slot)):
                await free_slot(ports, routed.slot, claimed.id, token=token)
            # (running there with another task, an earlier job adopted meanwhile: the slot is that job's)
            await _drop_orphan(claimed, routed.provider, routed.external_id)
            return
        await publish_all(ports.publisher, [changed(updated, GenerationStatus.SUBMITTING, at)])
        await outbox.dispatch(ports.jobs, sends)
    except BaseException:
        # The outcome was not written (the database failed, the worker is stopping): the slot sweep
        # gives the slot back to whatever the database says runs there. Once it was written, the
        # slot is the generation's (PROCESSING there, or waiting on an uncertain route there).
        if not outcome.written:
            await free_slot(ports, routed.slot, claimed.id, token=token)
        raise


@dataclass
class _Outcome:
    """Whether a submit's outcome is in the database: from then on the slot it holds is the generation's
    (set at the commit itself, so a cancellation while the unit of work closes does not free it)."""

    written: bool = False


def _waiting(current: Generation, now: datetime) -> bool:
    """A generation backing off (no submitter holds it) until a time still ahead, or one waiting on an uncertain
    route (its job's callback, or a lookup): not exhausted. Waits on an uncertain route are not counted against
    the attempts; the deadline bounds them (the expiry sweep ends them, their hold released)."""
    if current.uncertain_route is not None:
        return True
    return current.lease_token is None and current.next_attempt_at is not None and current.next_attempt_at > now


async def _record(ports: ProcessingPorts, routed: RoutedSubmit) -> datetime | None:
    """The routes tried, in a transaction of their own: history, true whatever the outcome's write finds.
    An attempt that asked no provider (routes skipped, or an uncertain route's lookup that failed or was
    inconclusive), like the ones before it, extends their rows instead of adding more (a generation waiting
    on a full provider, or on a lookup, would add some every few seconds): since when it has been so is
    returned (None for any other attempt): the wait of one not standing in a line grows with it.

    Best effort: when a provider took the job, a failure here must not lose its task id (the
    generation would be submitted again, a second paid job); it is logged instead.
    """
    unasked = bool(routed.attempts) and routed.nothing_asked and routed.provider is None
    try:
        async with ports.uow() as uow:
            since = None
            if unasked:
                since = await uow.generations.record_skips(routed.attempts)
            else:
                await uow.generations.record_attempts(routed.attempts)
            await uow.commit()
        return since
    except Exception:
        log.exception("could not record the provider attempts of a submit")
        return None


def _job(
    generation: Generation,
    model: AiModel,
    route: ProviderRoute,
    provider: Provider,
    attempt: int,
    input_urls: list[str],
    policy: ProcessingPolicy,
) -> ProviderJob:
    params: dict[str, Any] = {**route.provider_params(generation.params), ATTEMPT_PARAM: attempt - 1}
    # The callback URL names the generation: the job's callback finds it even when we never got the task id.
    bound = provider.callback_bound(route.provider_model) if isinstance(provider, CallbackBinding) else None
    query = callback_query(policy.callback_key, provider.name, generation.id, bound)
    callback = None
    if policy.callback_base_url:
        callback = f"{policy.callback_base_url.rstrip('/')}/providers/{provider.name}/callback"
        if query:
            callback += "?" + urlencode(query)
    return ProviderJob(
        generation_id=generation.id,
        provider_model=route.provider_model,
        prompt=generation.prompt,
        params=params,
        input_urls=tuple(input_urls),
        callback_url=callback,
        callback_query=query,
        kind=model.kind.value,
        deadline_at=generation.deadline_at,
    )


async def _submitted(
    ports: ProcessingPorts,
    claimed: Generation,
    token: uuid.UUID,
    attempt: int,
    provider: Provider,
    external_id: str,
    policy: ProcessingPolicy,
    outcome: _Outcome,
) -> tuple[Generation | None, list[Dispatch], datetime]:
    """PROCESSING at `provider`, written (announcing it is the caller's); None when the generation moved on
    meanwhile (canceled, expired, taken over, or its earlier job adopted)."""
    now = ports.clock.now()
    async with ports.uow() as uow:
        updated = await uow.generations.transition_if(
            claimed.id,
            sources=SUBMITTING_ONLY,
            target=GenerationStatus.PROCESSING,
            at=now,
            expect={"submit_attempts": attempt, "lease_token": token},
            provider_task_id=external_id,
            provider=provider.name,
            uncertain_route=None,
            uncertain_model=None,
            uncertain_since=None,
            next_attempt_at=None,  # poll at the next tick
            lease_token=None,
        )
        sends: list[Dispatch] = []
        if updated is not None:
            await uow.generations.record_provider_task(claimed.id, provider.name, external_id, "submitted", {}, now)
            sends = await outbox.record(uow, updated, GenerationStatus.SUBMITTING, now, policy.webhooks)
            await uow.commit()
            outcome.written = True
    return updated, sends, now


async def _current(ports: ProcessingPorts, claimed: Generation) -> Generation | None:
    async with ports.uow() as uow:
        return await uow.generations.get(claimed.id)


def _runs_at(current: Generation, provider: str | None) -> bool:
    """Whether the generation runs a task at `provider` (one adopted while this submit ran, say)."""
    return current.status is GenerationStatus.PROCESSING and provider is not None and current.provider == provider


async def _drop_orphan(claimed: Generation, provider: Provider, external_id: str) -> None:
    """The task of a generation that moved on during the submit is nobody's: canceled where the provider can."""
    log.info("generation %s moved on during submit; dropping provider task %s", claimed.id, external_id)
    if provider.supports_cancel:
        try:
            await provider.cancel(external_id)
        except ProviderError as exc:
            log.warning("could not cancel orphan provider task %s: %s", external_id, exc)


async def _failed(
    ports: ProcessingPorts,
    policy: ProcessingPolicy,
    claimed: Generation,
    token: uuid.UUID,
    attempt: int,
    exc: ProviderError,
    *,
    uncertain: ProviderRoute | None = None,
    looks_up: bool = False,
    route_gone: bool = False,
    counted: bool = True,
    skipping_since: datetime | None = None,
    grace: bool = False,
    uncertain_at: datetime | None = None,
    in_line: bool = False,
) -> bool:
    """Back off for the next attempt, wait for an uncertain job's callback, or fail for good. True when the
    generation waits with a route to go back to (`uncertain`, or one from before): it keeps that provider's slot.

    An attempt that asked no provider (`counted` False: every route skipped at one of our limits, its circuit
    open, the slots uncountable) gives its claim back: such waits are bounded by the deadline, not the attempts.
    One that stands in a full provider's line (`in_line`) tries again soon (`full_retry_seconds`), however long
    it has waited: the line keeps its place, and a late try could lose it. Any other: as its skips repeat
    (`skipping_since`), its wait grows, to half the time skipped so far, up to the retry cap.

    After an uncertain submit (not counted against the attempts), a provider that can list its jobs
    (`looks_up`) is looked at after the grace period, and again a grace period after an inconclusive lookup or a
    found job another generation took (`grace`: the list needs time to change, not the retry backoff); any other calls back only when its job ends, however long it runs, so the generation waits for
    that until its deadline (`route_gone` likewise: only the callback may bring the job), then expires.
    """
    now = ports.clock.now()
    # Fenced on the claim's token too: a claim given back makes `submit_attempts` a number an older,
    # stalled submitter also holds.
    fence: dict[str, object] = {"submit_attempts": attempt, "lease_token": token}
    wait: datetime | None = None
    fields: dict[str, Any] = {}
    if uncertain is not None:
        # A job may run there without an id we know: wait for its callback (adopted), then look, then ask.
        fields = {
            "provider": uncertain.provider,
            "uncertain_route": uncertain.index,
            "uncertain_model": uncertain.provider_model,
            # The first uncertain submit's time is kept: a job of it may still be listed (a later one, sent
            # after a lookup proved that absent, is listed after it anyway).
            "uncertain_since": claimed.uncertain_since or uncertain_at or now,
        }
        if looks_up:
            wait = _until(claimed, now + timedelta(seconds=policy.uncertain_grace_seconds))
        else:
            # Without a deadline (rows from before deadlines) it fails at its next attempt, its hold released.
            wait = claimed.deadline_at or now + timedelta(seconds=policy.uncertain_grace_seconds)
    elif route_gone and claimed.deadline_at is not None:
        wait = claimed.deadline_at  # only the callback may still bring the job: the expiry sweep ends the wait
    elif grace:
        wait = _until(claimed, now + timedelta(seconds=policy.uncertain_grace_seconds))
    elif exc.retryable and not route_gone and (attempt < policy.max_attempts or not counted):
        if in_line and not counted:
            delay = full_retry_seconds(policy.jitter())
        else:
            delay = backoff_seconds(
                attempt,
                base=policy.retry_base_seconds,
                cap=policy.retry_max_seconds,
                jitter=policy.jitter(),
                retry_after=exc.retry_after,
            )
            if skipping_since is not None and not counted:
                skipped = (now - skipping_since).total_seconds()
                delay = max(delay, min(policy.retry_max_seconds, skipped / 2))
        wait = _until(claimed, now + timedelta(seconds=delay))
    if wait is not None and not counted:
        fields["submit_attempts"] = attempt - 1
    if wait is not None:
        log.info("submit of %s failed (%s), attempt %d; next at %s", claimed.id, exc.code, attempt, wait.isoformat())
        async with ports.uow() as uow:
            # Status stays SUBMITTING; only the lease becomes the wait (the poller re-kicks it).
            updated = await uow.generations.transition_if(
                claimed.id,
                sources=SUBMITTING_ONLY,
                target=GenerationStatus.SUBMITTING,
                at=now,
                expect=fence,
                next_attempt_at=wait,
                lease_token=None,
                **fields,
            )
            await uow.commit()
        if uncertain is not None:
            log.info(
                "generation %s waits for its job at route %d (%s, %s): a job may exist there",
                claimed.id,
                uncertain.index,
                uncertain.provider,
                uncertain.provider_model,
            )
        return updated is not None and updated.uncertain_route is not None
    log.info("submit of %s failed for good (%s) after %d attempt(s)", claimed.id, exc.code, attempt)
    await fail(
        ports,
        claimed,
        sources=SUBMITTING_ONLY,
        code=exc.code,
        message=exc.message,
        expect=fence,
        webhooks=policy.webhooks,
    )
    return False


def _until(claimed: Generation, at: datetime) -> datetime:
    """`at`, never past the generation's deadline (a wait up to it ends with the expiry sweep)."""
    if claimed.deadline_at is not None and at > claimed.deadline_at:
        return claimed.deadline_at
    return at


async def _exhausted(ports: ProcessingPorts, current: Generation, webhooks: OutboxPolicy) -> None:
    """Every attempt was claimed and none ended (each submitter died or stalled): FAILED, hold released.

    Fenced on the attempt count and on no lease running, so the submitter of the last
    attempt, while it lives, keeps its generation.
    """
    failed = await fail(
        ports,
        current,
        sources=SUBMITTABLE,
        code="SUBMIT_ATTEMPTS_EXHAUSTED",
        message="The provider could not be reached within the allowed number of attempts.",
        expect={"submit_attempts": current.submit_attempts},
        unheld=True,
        webhooks=webhooks,
    )
    if failed is not None:
        log.error(
            "generation %s failed: %d submit attempts claimed, none finished", current.id, current.submit_attempts
        )
