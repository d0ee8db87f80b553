"""Delivering the product's e-mail from workers, retried until it goes or its time is up.

`send_email` (the task use cases queue, domain/emails.py) records its message in the
outbound record under the task message's id, then makes one attempt. An attempt claims the
record (held for `hold`, so a second delivery of the same task message, or the sweep, waits),
sends it through the Mailer and settles it:
- taken by the server: SENT;
- refused for good (`MailUndeliverable`: a bad address): UNDELIVERABLE, logged once, never
  tried again;
- not taken now (`ServiceUnavailable`: unreachable, a timeout, 4xx): due again after a
  backoff with jitter, until `give_up_at` (MAIL_GIVE_UP_SECONDS after it was queued), then
  FAILED and logged as an error.
`send_due` (a periodic sweep) queues an attempt for every message due again: a retry, and
a message whose worker died mid-attempt (its hold ran out).

At least once, not exactly once: a worker that dies after the server took the message but
before SENT was written leaves it to be sent again when its hold runs out. Every other
repeat (a redelivered task message, the sweep, two workers) finds the record settled or held.
"""

from __future__ import annotations

import enum
import logging
import random
import uuid
from dataclasses import dataclass
from datetime import timedelta

from domain.emails import EmailMessage, MailUndeliverable, QueuedEmail, QueuedState
from domain.errors import ServiceUnavailable
from domain.ports import Clock, JobQueue, Mailer, OutboundMail
from domain.retries import backoff_seconds

log = logging.getLogger("genhub.mail")

#: The task that makes one attempt at a recorded message (queued by the sweep).
SEND_QUEUED_EMAIL_TASK = "send_queued_email"


class Delivery(enum.StrEnum):
    SENT = "sent"
    UNDELIVERABLE = "undeliverable"
    RETRYING = "retrying"
    FAILED = "failed"
    #: Nothing done: already settled, held by another attempt, or not due yet.
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class MailPorts:
    mailer: Mailer
    outbound: OutboundMail
    jobs: JobQueue
    clock: Clock


@dataclass(frozen=True, slots=True)
class MailPolicy:
    give_up_seconds: float = 3600.0
    retry_base_seconds: float = 30.0
    retry_max_seconds: float = 600.0
    #: One attempt's hold on a message: above the SMTP client's own timeouts for one message.
    hold_seconds: float = 300.0
    sweep_batch: int = 100
    #: Settled records (no body) are kept this long for the operators, then deleted.
    keep_settled_seconds: float = 30 * 24 * 3600.0


async def send_email(key: str, message: EmailMessage, *, ports: MailPorts, policy: MailPolicy) -> Delivery:
    """Record `message` under `key` (the task message's id) and make its first attempt."""
    email_id = await ports.outbound.record(key, message, give_up_after=timedelta(seconds=policy.give_up_seconds))
    return await send_queued(email_id, ports=ports, policy=policy)


async def send_queued(email_id: uuid.UUID, *, ports: MailPorts, policy: MailPolicy) -> Delivery:
    """One attempt at the recorded message, if it is pending, due and held by nobody."""
    claimed = await ports.outbound.claim(email_id, hold=timedelta(seconds=policy.hold_seconds))
    if claimed is None:
        return Delivery.SKIPPED
    try:
        await ports.mailer.send(claimed.message)
    except MailUndeliverable as exc:
        log.warning("mail %s to %s refused for good, not retried: %s", email_id, claimed.message.to, exc)
        await ports.outbound.settle(email_id, state=QueuedState.UNDELIVERABLE, error=str(exc))
        return Delivery.UNDELIVERABLE
    except ServiceUnavailable as exc:
        return await _not_now(claimed, exc, ports=ports, policy=policy)
    await ports.outbound.settle(email_id, state=QueuedState.SENT)
    return Delivery.SENT


async def _not_now(claimed: QueuedEmail, exc: ServiceUnavailable, *, ports: MailPorts, policy: MailPolicy) -> Delivery:
    reason = f"{exc.dependency}: {exc.__cause__!r}" if exc.__cause__ else exc.dependency
    delay = backoff_seconds(
        claimed.attempts, base=policy.retry_base_seconds, cap=policy.retry_max_seconds, jitter=random.random()
    )
    if ports.clock.now() + timedelta(seconds=delay) > claimed.give_up_at:
        log.error(
            "mail %s to %s given up after %d attempts: %s", claimed.id, claimed.message.to, claimed.attempts, reason
        )
        await ports.outbound.settle(claimed.id, state=QueuedState.FAILED, error=reason)
        return Delivery.FAILED
    log.info("mail %s: attempt %d not taken (%s); again in %.0f s", claimed.id, claimed.attempts, reason, delay)
    await ports.outbound.retry_later(claimed.id, after=timedelta(seconds=delay), error=reason)
    return Delivery.RETRYING


async def send_due(*, ports: MailPorts, policy: MailPolicy) -> int:
    """Queue an attempt for every message due again (and drop old settled records); how many were queued."""
    due = await ports.outbound.due(limit=policy.sweep_batch)
    for email_id in due:
        await ports.jobs.enqueue(SEND_QUEUED_EMAIL_TASK, email_id=str(email_id))
    await ports.outbound.purge(settled_before=timedelta(seconds=policy.keep_settled_seconds))
    return len(due)
