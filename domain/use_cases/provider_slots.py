"""Per-provider concurrency (PROVIDER_CONCURRENCY): a generation holds an in-flight slot of its provider
from its submit until it ends there.

"In flight" is what runs at the provider: a slot is taken before a route is asked (atomically
across workers, `ProviderSlots`), kept when the provider took the job, or when the outcome is
unknown (a job may run there: the generation's later attempts go to that route only), and freed
on every other way out: the route refused, failed over or was skipped, the submitter raised or
was cancelled, the generation ended (succeeded, failed, canceled, expired; domain/use_cases/
processing.py `fail`, finalization, sweeps).

An uncertain submit at a provider that only calls back when its job ends (KIE, fal: not a `JobLookup`)
keeps its slot for `uncertain_grace_seconds` only: it waits for that callback until its deadline, most
often for a job that never started, and a slot held all that while would keep a working generation out.
After the grace period the sweep frees it (a job that does run there then runs beside the limit), and the
generation takes one again when its job's callback is adopted (domain/use_cases/adoption.py), whatever
the limit: it runs there.

The database is the truth the slots are repaired from: the sweep (`reconcile_slots`) gives a
slot to every generation PROCESSING on the provider or SUBMITTING with an uncertain route there
(within its grace period when only a callback can bring the job) that held none when read (after a Redis restart lost them), renews the slots of those and of
submits under a live lease that are still held (never bringing back one freed during the sweep),
and frees every other one (a submitter that died, a release that was lost). Each slot's lease is
the last safety net when the sweep does not run.

First come, first served: a generation refused for a full provider stands in that provider's waiting line
(`ProviderSlots`: a ticket with the time of its first refusal, kept across its tries, atomic with the slots),
and a freed slot goes to the earliest live waiter, not to whichever submit asks first: a slot is given only
while `held + live waiters ahead < limit` (a newcomer counts every live waiter as ahead; one holding a slot
already is not counted twice). Taking the slot keeps the ticket until the attempt's outcome: a slot taken
and given back unused (its route then skipped for the provider's rate limit or an open circuit: the route
names the line in `lines`) keeps the generation's place. A waiter's place lives for `line_wait` after each try, so one that stopped
trying (its worker died, its generation was deleted) stops blocking the line after that. While it stands in
line a generation retries every `full_retry_seconds` (its place is kept: waiting longer no longer means
retrying less often). It leaves the line when its attempt ends with a provider asked (it took the job, or the
outcome is uncertain, or it failed) or any other way than waiting (served by another route: domain/use_cases/
submission.py), and when it ends
(`free_slot` without a token leaves every line); the sweep drops the tickets of generations that no longer
wait (ended, deleted, or not SUBMITTING) in case such a cleanup was lost. A freed slot does not wake the
first waiter: a SUBMITTING generation backing off cannot be claimed before its `next_attempt_at` (the claim's
own fence), so it would need a database write per freed slot; the short retry brings it instead. A lost line
(Redis restarted) costs at most one round of order: the next refusals take new tickets.

A slot is taken under the token of the submit claim that took it: a submitter frees only its own
claim's slot, so one that lost its lease (another claim of the generation took the slot over)
cannot free the newer claim's. A generation holds at most one slot; two of its claims in flight at
once (one presumed dead) share it, and only one of their outcomes is written.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from domain.generations import Generation, GenerationStatus
from domain.ports import JobLookup, ProviderError
from domain.use_cases.processing import SUBMITTABLE, ProcessingPolicy, ProcessingPorts, free_slot, leave_lines

__all__ = [
    "CONCURRENCY_LIMIT",
    "LineWait",
    "free_slot",
    "full_retry_seconds",
    "hold_again",
    "line_wait",
    "reconcile_slots",
    "runs_on",
    "take_slot",
]

log = logging.getLogger("genhub.processing")

CONCURRENCY_LIMIT = "PROVIDER_CONCURRENCY_LIMIT"
#: How long a submit waits before trying a full provider again (a slot frees when a generation ends).
FULL_RETRY_SECONDS = 5.0
#: A waiter's place outlives this many of its rounds of tries without one (a late round keeps it).
LINE_ROUNDS = 3


class LineWait(ProviderError):
    """A full provider's refusal: the generation stands in that provider's waiting line."""


def full_retry_seconds(jitter: float) -> float:
    """The wait of a generation standing in a full provider's line before its next try: `FULL_RETRY_SECONDS`
    and up to half of it again (`jitter` in [0, 1)), so waiters freed by one slot do not all come at once."""
    return FULL_RETRY_SECONDS * (1.0 + min(max(jitter, 0.0), 1.0) / 2)


def line_wait(policy: ProcessingPolicy) -> timedelta:
    """How long a waiter keeps its place after a try. Its next try comes after its short retry
    (`full_retry_seconds`, at most 1.5 x FULL_RETRY_SECONDS), at the poll sweep's next tick
    (`poll_interval_seconds`), and no sooner than one generation lease after the sweep's previous re-kick
    of it (it re-kicks each attempt once per `lease_seconds`), plus the queue's delay: one round is at most
    `max(retry, lease) + poll interval` and that delay. `LINE_ROUNDS` of those absorb a late round or two
    (a busy queue, a missed tick) without losing the place, while a waiter that stopped trying blocks the
    line only that long."""
    retry = full_retry_seconds(1.0)
    round_seconds = max(retry, policy.lease_seconds) + policy.poll_interval_seconds
    return timedelta(seconds=LINE_ROUNDS * round_seconds)


async def take_slot(
    ports: ProcessingPorts,
    policy: ProcessingPolicy,
    provider: str,
    holder: uuid.UUID,
    limit: int,
    *,
    token: uuid.UUID | None = None,
) -> ProviderError | None:
    """None when `holder` holds a slot of `provider` now, under its claim's `token`; else the refusal (its
    route is skipped)."""
    if ports.slots is None:
        return None
    try:
        taken = await ports.slots.acquire(
            provider, holder, limit=limit, lease=policy.slot_lease, token=token, wait=line_wait(policy)
        )
    except Exception:
        # Fail closed: without the shared count, a submit could exceed the provider's limit.
        log.exception("could not take a slot of %s", provider)
        return ProviderError(
            CONCURRENCY_LIMIT, f"{provider}'s slots cannot be counted now.", retryable=True, retry_after=1.0
        )
    if taken:
        return None
    return LineWait(
        CONCURRENCY_LIMIT,
        f"{provider} runs its {limit} generation(s) at once; this one waits in its line.",
        retryable=True,
        retry_after=FULL_RETRY_SECONDS,
    )


async def reconcile_slots(*, ports: ProcessingPorts, policy: ProcessingPolicy) -> int:
    """Repair every limited provider's slots and waiting line from the database; how many slots were freed."""
    if ports.slots is None:
        return 0
    freed = 0
    for provider, limit in sorted(policy.provider_limits.items()):
        if limit.concurrency is None:
            continue
        try:
            freed += await _reconcile(ports, policy, provider)
        except Exception:
            log.exception("could not reconcile %s's slots", provider)
        try:
            await _reconcile_line(ports, provider)
        except Exception:
            log.exception("could not reconcile %s's waiting line", provider)
    return freed


async def _reconcile_line(ports: ProcessingPorts, provider: str) -> int:
    """Drop the tickets of generations that no longer wait: ended, deleted, or no longer SUBMITTING (a lost
    `leave`); how many. A SUBMITTING one keeps its place (its ticket lapses by itself if it stopped trying)."""
    assert ports.slots is not None
    waiting = await ports.slots.waiters(provider)
    if not waiting:
        return 0
    async with ports.uow() as uow:
        found = {g.id: g for g in await uow.generations.get_many(list(waiting))}
    gone = [g for g in waiting if g not in found or found[g].status is not GenerationStatus.SUBMITTING]
    if gone:
        await ports.slots.dismiss(provider, gone)
        log.info("dropped %d ticket(s) of %s's line held by generations no longer waiting", len(gone), provider)
    return len(gone)


async def _reconcile(ports: ProcessingPorts, policy: ProcessingPolicy, provider: str) -> int:
    assert ports.slots is not None
    held = await ports.slots.holders(provider)
    async with ports.uow() as uow:
        found = {g.id: g for g in await uow.generations.on_provider(provider, list(held))}
    now = ports.clock.now()
    looks_up = _looks_up(ports, provider)
    holding = {g.id for g in found.values() if runs_on(g, provider) and not _callback_only(g, policy, now, looks_up)}
    keep = holding | {g.id for g in found.values() if g.id in held and _submitting(g, now)}
    # Only what was held when read is renewed (a slot freed since, say by a failover, stays free); a slot
    # is added only for what runs there and held none when read.
    renew = [holder for holder in held if holder in keep]
    add = [g for g in holding if g not in held]
    stale = {holder: end for holder, end in held.items() if holder not in keep}
    await ports.slots.reconcile(provider, renew=renew, add=add, stale=stale, lease=policy.slot_lease)
    if stale:
        log.info("freed %d slot(s) of %s held by nothing running there", len(stale), provider)
    return len(stale)


def runs_on(generation: Generation, provider: str) -> bool:
    """Whether `generation` may have a job at `provider`: it runs there, or an uncertain submit went there."""
    if generation.provider != provider:
        return False
    return generation.status is GenerationStatus.PROCESSING or (
        generation.status is GenerationStatus.SUBMITTING and generation.uncertain_route is not None
    )


def _callback_only(generation: Generation, policy: ProcessingPolicy, now: datetime, looks_up: bool) -> bool:
    """An uncertain wait past its grace period at a provider that cannot be looked up: only the job's callback
    may still end it (at the deadline, most often, for a job that never started), so it holds no slot. A row
    from before `uncertain_since` was recorded has waited longer than that already."""
    if looks_up or generation.status is not GenerationStatus.SUBMITTING or generation.uncertain_route is None:
        return False
    since = generation.uncertain_since
    return since is None or (now - since).total_seconds() >= policy.uncertain_grace_seconds


def _looks_up(ports: ProcessingPorts, provider: str) -> bool:
    try:
        return isinstance(ports.providers.get(provider), JobLookup)
    except KeyError:
        return False


async def hold_again(ports: ProcessingPorts, policy: ProcessingPolicy, provider: str, holder: uuid.UUID) -> None:
    """`holder` runs a job at `provider` again (an adopted one): its slot, whatever the limit, best effort (the
    sweep adds it otherwise)."""
    limit = policy.provider_limits.get(provider)
    if ports.slots is None or limit is None or limit.concurrency is None:
        return
    try:
        await ports.slots.reconcile(provider, renew=[], add=[holder], stale={}, lease=policy.slot_lease)
    except Exception:
        log.exception("could not hold %s's slot of %s again (the slot sweep will)", holder, provider)
    await leave_lines(ports, holder)  # it runs there: it waits in no line


def _submitting(generation: Generation, now: datetime) -> bool:
    """A submitter holds it under a live lease (it may be asking the provider right now)."""
    return (
        generation.status in SUBMITTABLE
        and generation.lease_token is not None
        and generation.next_attempt_at is not None
        and generation.next_attempt_at > now
    )
