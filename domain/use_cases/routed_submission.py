"""Failover across a model's provider routes, within one submit attempt (domain/use_cases/submission.py).

The routes (domain/provider_routes.py) are tried in order until one provider takes the job.
A route fails over to the next only when its failure proves no job was created there
(a second paid job must never run beside a first one nobody follows):

* the provider refused the job before taking it: a retryable `ProviderError` marked
  `nothing_started` (429, 402, 503, KIE's 455 maintenance, a connection never made);
* the route cannot be used in this deployment: its provider is not configured (no credentials),
  no longer registered, or our credentials or route (`our_config`: 401/403, an unknown model)
  are wrong; such a failure counts against its circuit;
* its circuit is open (domain/provider_health.py), or it is at one of our own limits for it
  (`ProviderLimit`): its in-flight slots are all held (PROVIDER_CONCURRENCY, one slot per
  generation from submit to end, domain/use_cases/provider_slots.py; refused, the generation stands in
  that provider's waiting line), or its submits per window
  across every worker are used up (PROVIDER_RATE_LIMITS, and the providers' own defaults such as
  KIE's 18 per 10 s: the one count of submits, the adapters keep none). It is skipped without
  being asked, and the skip does not count against its circuit. The last route left waits for
  its rate (up to `provider_rate_wait_seconds`, within the deadline) instead of being skipped.

A failure after the request may have reached the provider (a read timeout, a dropped
connection, a gateway's 502/504 for it, a 2xx answer that does not parse) does not fail over: the job may
exist there. The route is the generation's uncertain route from then on (`uncertain_route`,
found again by its provider and provider model, never by its index: routes may be inserted or
reordered meanwhile), and no other route is ever tried for it. None of our providers takes an
idempotency key on create, so sending the job again would start a second paid job. Instead:

* every callback URL we give a provider names the generation (domain/provider_callbacks.py), so
  the job's callback, with a task id we never recorded, is adopted by the generation waiting on
  that route (domain/use_cases/adoption.py);
* a provider that calls back only when its job ends (KIE, fal) and cannot be looked up is never asked
  again: the generation waits for that callback until its deadline, and the expiry sweep ends it with
  its hold released (`AWAITING_CALLBACK`);
* a provider that can list its jobs (`JobLookup`: Replicate) is looked up after `uncertain_grace_seconds`
  (never past the deadline), back to the uncertain submit: jobs other generations hold are passed over,
  exactly one left is taken as the submit's answer; several, or a list not read back that far, are
  `LOOKUP_INCONCLUSIVE` (nothing taken, nothing sent, looked up again);
* only a complete list without a match (the job proven absent) sends the job again.

Neither the uncertain submit nor a lookup (failed or inconclusive) counts against `max_attempts`: the wait on
an uncertain route is bounded by the deadline, as for a provider that only calls back.

If the model no longer has that route, the generation waits for the adoption until its deadline
(or, without one, fails with its hold released): no other route is tried. The generation keeps
that provider's slot meanwhile.
A permanent refusal (a 4xx: invalid input, content policy) does not fail over either: the
request itself is wrong, and another provider would either refuse it too or hide a mapping
bug. It fails the generation.

Once a provider returned a task id, the bookkeeping after it (its circuit's record) is best
effort: an error there is logged and the task id kept.

The credits were reserved once by `generate`; no route reserves again. Every route tried (or
skipped) is one `ProviderAttempt`, recorded whatever the outcome. When every route failed over,
the attempt fails as one retryable error (the submit backoff applies, and the next attempt
starts again from the first route; when every route was skipped before its request, the result
is `nothing_asked` and the attempt is not counted: domain/use_cases/submission.py), or, when none of them may work later, as a permanent one
(the generation fails, its hold released). A model with several routes then reports
ALL_ROUTES_FAILED; a one-route model reports its provider's own code, as before routes existed.
The generation's deadline bounds the loop: past it no further route is tried, and the
expiry sweep ends the generation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from domain.catalogue import AiModel
from domain.generations import Generation
from domain.ports import JobLookup, Provider, ProviderError, ProviderJob
from domain.provider_attempts import AttemptOutcome, ProviderAttempt
from domain.provider_health import ProviderLimit
from domain.provider_routes import ProviderRoute
from domain.use_cases.processing import ProcessingPolicy, ProcessingPorts, free_slot
from domain.use_cases.provider_slots import CONCURRENCY_LIMIT, LineWait, take_slot
from domain.use_cases.uncertain_lookup import LOOKUP_INCONCLUSIVE, look_up

log = logging.getLogger("genhub.processing")

ALL_ROUTES_FAILED = "ALL_ROUTES_FAILED"
CIRCUIT_OPEN = "CIRCUIT_OPEN"
RATE_LIMIT = "PROVIDER_RATE_LIMIT"
UNCERTAIN_ROUTE_GONE = "UNCERTAIN_ROUTE_GONE"
AWAITING_CALLBACK = "AWAITING_PROVIDER_CALLBACK"
__all__ = [
    "ALL_ROUTES_FAILED",
    "AWAITING_CALLBACK",
    "LOOKUP_INCONCLUSIVE",
    "CIRCUIT_OPEN",
    "CONCURRENCY_LIMIT",
    "RATE_LIMIT",
    "UNCERTAIN_ROUTE_GONE",
    "RoutedSubmit",
    "submit_routes",
]
#: Permanent for the request, yet a fact of this deployment, not of the request: the next route may work.
DEPLOYMENT_CODES = frozenset({"PROVIDER_NOT_CONFIGURED", "PROVIDER_UNKNOWN"})


def fails_over(exc: ProviderError) -> bool:
    """Whether the next route is tried after `exc`: only when it proves no job was created there."""
    return exc.code in DEPLOYMENT_CODES or exc.our_config or (exc.retryable and exc.nothing_started)


def uncertain(exc: ProviderError) -> bool:
    """Whether a job may exist after `exc`: the request may have reached the provider, and no answer said no."""
    return exc.retryable and not exc.nothing_started and exc.code not in DEPLOYMENT_CODES


def counts_as_up(exc: ProviderError) -> bool:
    """Whether the provider's circuit records `exc` as a success: a permanent refusal of the request is an answer."""
    return not (exc.retryable or exc.our_config or exc.code in DEPLOYMENT_CODES)


@dataclass
class RoutedSubmit:
    """What the routes gave: a provider's task (`provider`, `external_id`, `route`) or the `error`."""

    attempts: list[ProviderAttempt] = field(default_factory=list)
    provider: Provider | None = None
    route: ProviderRoute | None = None
    external_id: str | None = None
    error: ProviderError | None = None
    #: The route of an uncertain failure (`uncertain`): a job may exist there without a task id.
    uncertain: ProviderRoute | None = None
    #: When that uncertain request was sent (its route's start): a lookup reads the list back to it.
    uncertain_at: datetime | None = None
    #: The provider whose in-flight slot the generation still holds (the route that took the job,
    #: the uncertain one, or the route it must go back to): the caller keeps or frees it.
    slot: str | None = None
    #: The generation's uncertain route is no longer the model's: it waits for the job's callback only.
    route_gone: bool = False
    #: The uncertain route's provider can list its jobs (`JobLookup`): it is looked at after the grace period;
    #: any other only calls back when its job ends, so the generation waits for that until its deadline.
    looks_up: bool = False
    #: Going back to an uncertain route of a provider that cannot be looked at: nothing is sent again, the
    #: generation waits for the job's callback until its deadline.
    awaits_callback: bool = False
    #: No provider was asked (every route skipped before its request, or the deadline came first):
    #: the attempt does not count against `max_attempts`.
    nothing_asked: bool = True
    #: The providers that refused it for being full, or whose slot it took and gave back unused (its route then
    #: skipped for the rate limit or an open circuit): it stands in their waiting lines (domain/use_cases/
    #: provider_slots.py) while it waits for them; the caller takes it out of every other line.
    lines: list[str] = field(default_factory=list)


def routes_to_try(model: AiModel, generation: Generation) -> Sequence[ProviderRoute] | None:
    """The model's routes; after an uncertain submit only that route, found by its provider and provider
    model (an index shifts when routes are edited); None when the model no longer has it."""
    if generation.uncertain_route is None:
        return model.routes
    # A row recorded before the provider model was (uncertain_model NULL) is not matched by its index: the
    # route at that index may be another one now. It waits for its job's callback until its deadline.
    for route in model.routes:
        if route.provider == generation.provider and route.provider_model == generation.uncertain_model:
            return (route,)
    log.warning(
        "generation %s: its uncertain route (%s, %s) is no longer the model's; no other route is tried",
        generation.id,
        generation.provider,
        generation.uncertain_model,
    )
    return None


async def submit_routes(
    ports: ProcessingPorts,
    policy: ProcessingPolicy,
    generation: Generation,
    model: AiModel,
    attempt: int,
    job_for: Callable[[ProviderRoute, Provider], ProviderJob],
) -> RoutedSubmit:
    """Try `model`'s routes in order; the attempts are in the result whatever happened.

    Anything but a `ProviderError` from a provider propagates (a bug): the attempts made so far
    are then lost with it (its slot freed), and the caller backs off as for a transient error.
    """
    result = RoutedSubmit()
    errors: list[tuple[int, ProviderError]] = []
    routes = routes_to_try(model, generation)
    if routes is None:
        result.error = ProviderError(
            UNCERTAIN_ROUTE_GONE, "The route that may hold the job is no longer the model's.", retryable=True
        )
        result.route_gone, result.slot = True, generation.provider  # a job may still run there
        return result
    # Going back to an uncertain route: the job of that earlier submit may still run there.
    going_back = generation.uncertain_route is not None
    for position, route in enumerate(routes):
        started = ports.clock.now()
        if generation.deadline_at is not None and started >= generation.deadline_at:
            log.info("generation %s reached its deadline before route %d", generation.id, route.index)
            break

        def record(
            outcome: AttemptOutcome, code: str | None, route: ProviderRoute = route, started: datetime = started
        ) -> None:
            result.attempts.append(
                ProviderAttempt(
                    generation_id=generation.id,
                    submit_attempt=attempt,
                    route_index=route.index,
                    provider=route.provider,
                    started_at=started,
                    finished_at=ports.clock.now(),
                    outcome=outcome,
                    error_code=code,
                )
            )

        try:
            provider = ports.providers.get(route.provider)
        except KeyError:
            unknown = ProviderError("PROVIDER_UNKNOWN", f"No provider named {route.provider!r}.", retryable=False)
            errors.append((route.index, unknown))
            record(AttemptOutcome.SKIPPED, "PROVIDER_UNKNOWN")
            continue
        if going_back and not isinstance(provider, JobLookup):
            # Its job calls back only when it ends, and no absence can be proven: never sent again. No slot is
            # taken for the wait (the sweep frees the one it holds after the grace period; adoption takes one).
            result.error = ProviderError(AWAITING_CALLBACK, "The earlier job's callback is awaited.", retryable=True)
            result.awaits_callback = True
            return result
        limit = policy.provider_limits.get(route.provider)
        holding: str | None = None
        if limit is not None and limit.concurrency is not None:
            full = await take_slot(
                ports, policy, route.provider, generation.id, limit.concurrency, token=generation.lease_token
            )
            if full is not None:
                if isinstance(full, LineWait):
                    _stand_in_line(result, route.provider)
                errors.append((route.index, full))
                record(AttemptOutcome.SKIPPED, full.code)
                continue
            holding = route.provider
        try:
            job = job_for(route, provider)
            if going_back and isinstance(provider, JobLookup):
                found = await look_up(ports, policy, provider, route.provider, job, generation)
                if isinstance(found, ProviderError):
                    # Nothing was sent: an inconclusive or failed lookup is not counted against the attempts.
                    # It waits (bounded by the deadline) and looks again.
                    record(AttemptOutcome.FAILED, found.code)
                    result.error = found
                    return result
                if found is not None:
                    result.nothing_asked = False
                    record(AttemptOutcome.SUBMITTED, None)
                    log.info("generation %s: its earlier job %s found at %s", generation.id, found, route.provider)
                    result.provider, result.route, result.external_id = provider, route, found
                    result.slot, holding = holding, None
                    return result
            if limit is not None and limit.rate is not None:
                last = position == len(routes) - 1
                over = await _rate_slot(
                    ports, route.provider, limit, wait_up_to=_wait_for_rate(ports, policy, generation, last)
                )
                if over is not None:
                    errors.append((route.index, over))
                    record(AttemptOutcome.SKIPPED, over.code)
                    _stand_in_line(result, holding)  # the slot it took goes back unused: its place is kept
                    continue
            if ports.breaker is not None and not await ports.breaker.allow(route.provider):
                errors.append((route.index, await _circuit_open(ports, route.provider)))
                record(AttemptOutcome.SKIPPED, CIRCUIT_OPEN)
                _stand_in_line(result, holding)
                continue
            result.nothing_asked = False
            try:
                external_id = await provider.submit(job)
            except ProviderError as exc:
                record(AttemptOutcome.FAILED, exc.code)
                await _record_outcome(ports, route.provider, ok=counts_as_up(exc))
                if not fails_over(exc) or going_back:
                    result.error = exc
                    if uncertain(exc):
                        result.uncertain, result.looks_up = route, isinstance(provider, JobLookup)
                        result.uncertain_at = started
                        result.slot, holding = holding, None
                    return result
                log.info("route %d (%s) of %s failed over: %s", route.index, route.provider, generation.id, exc.code)
                errors.append((route.index, exc))
                continue
            record(AttemptOutcome.SUBMITTED, None)
            result.provider, result.route, result.external_id = provider, route, external_id
            result.slot, holding = holding, None
            # The task exists: nothing after this may lose its id.
            await _record_outcome(ports, route.provider, ok=True)
            return result
        finally:
            if holding is not None and going_back:
                result.slot = holding  # the earlier submit's job may run there: the caller keeps it while it goes back
            elif holding is not None:
                await free_slot(ports, holding, generation.id, token=generation.lease_token)
    result.error = _all_failed(errors, several=len(routes) > 1)
    return result


async def _record_outcome(ports: ProcessingPorts, provider: str, *, ok: bool) -> None:
    """The circuit's record of a submit, best effort: its store failing must not change the outcome."""
    if ports.breaker is None:
        return
    try:
        await ports.breaker.record(provider, ok=ok)
    except Exception:
        log.exception("could not record a submit outcome for %s's circuit", provider)


def _stand_in_line(result: RoutedSubmit, provider: str | None) -> None:
    """The generation waits in `provider`'s line (None: no line): refused there for being full, or given back
    the slot it took there unused (its ticket stays while it holds a slot), so its place is kept."""
    if provider is not None and provider not in result.lines:
        result.lines.append(provider)


async def _circuit_open(ports: ProcessingPorts, provider: str) -> ProviderError:
    """The skip of an open circuit, to be retried when it half-opens (None: it is half-open, a probe is out)."""
    retry_after: float | None = None
    assert ports.breaker is not None
    try:
        (health,) = await ports.breaker.health([provider])
    except Exception:
        log.exception("could not read %s's circuit", provider)
    else:
        if health.open_until is not None:
            left = (health.open_until - ports.clock.now()).total_seconds()
            retry_after = left if left > 0 else None
    return ProviderError(CIRCUIT_OPEN, f"{provider}'s circuit is open.", retryable=True, retry_after=retry_after)


def _wait_for_rate(ports: ProcessingPorts, policy: ProcessingPolicy, generation: Generation, last: bool) -> float:
    """How long a route may wait for its provider's submit rate: only the last route left, within the deadline."""
    if not last:
        return 0.0
    wait = policy.provider_rate_wait_seconds
    if generation.deadline_at is not None:
        wait = min(wait, (generation.deadline_at - ports.clock.now()).total_seconds())
    return max(0.0, wait)


async def _rate_slot(
    ports: ProcessingPorts, provider: str, limit: ProviderLimit, *, wait_up_to: float
) -> ProviderError | None:
    """One of `provider`'s submits per window, counted across every worker (None: taken), waiting up to
    `wait_up_to` seconds for one; else the refusal, with when the next frees."""
    assert limit.rate is not None
    loop = asyncio.get_running_loop()
    give_up = loop.time() + wait_up_to
    while True:
        wait = await ports.limiter.hit(
            f"provider-submits:{provider}", limit=limit.rate, window_seconds=limit.window_seconds
        )
        if not wait:
            return None
        if loop.time() + wait > give_up:
            return ProviderError(RATE_LIMIT, f"{provider} had its submits for now.", retryable=True, retry_after=wait)
        await asyncio.sleep(wait)


def _all_failed(errors: list[tuple[int, ProviderError]], *, several: bool) -> ProviderError:
    if not errors:
        return ProviderError("DEADLINE_EXCEEDED", "The deadline passed before a provider took the job.", retryable=True)
    if not several:
        return errors[0][1]
    retryable = [e for _, e in errors if e.retryable]
    waits = [e.retry_after for e in retryable]
    retry_after = min(w for w in waits if w is not None) if waits and None not in waits else None
    message = "; ".join(f"route {i}: {e.code}" for i, e in errors)
    return ProviderError(
        ALL_ROUTES_FAILED,
        f"No provider route took the job ({message}).",
        retryable=bool(retryable),
        retry_after=retry_after,
    )
