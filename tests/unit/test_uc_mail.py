"""The mail use cases with hand-written fakes: each outcome of an attempt, the backoff, giving up, the sweep."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest

from domain.emails import EmailMessage, MailUndeliverable, QueuedEmail, QueuedState
from domain.errors import ServiceUnavailable
from domain.use_cases.mail import (
    SEND_QUEUED_EMAIL_TASK,
    Delivery,
    MailPolicy,
    MailPorts,
    send_due,
    send_email,
    send_queued,
)
from tests.unit.fakes import FakeClock, FakeJobQueue

MESSAGE = EmailMessage(to="ada@example.com", subject="Reset", text="token=abc")
POLICY = MailPolicy(give_up_seconds=3600, retry_base_seconds=30, retry_max_seconds=600, hold_seconds=300)


@dataclass
class Record:
    id: uuid.UUID
    message: EmailMessage
    give_up_at: datetime
    state: str = QueuedState.PENDING
    attempts: int = 0
    due_at: datetime | None = None
    held_until: datetime | None = None
    error: str | None = None


@dataclass
class FakeOutbound:
    """outbound_emails in memory, on the fake clock."""

    clock: FakeClock
    records: dict[str, Record] = field(default_factory=dict)
    purged_before: list[timedelta] = field(default_factory=list)

    def by_id(self, email_id: uuid.UUID) -> Record:
        return next(r for r in self.records.values() if r.id == email_id)

    async def record(self, key: str, message: EmailMessage, *, give_up_after: timedelta) -> uuid.UUID:
        now = self.clock.now()
        found = self.records.setdefault(key, Record(uuid.uuid4(), message, now + give_up_after, due_at=now))
        return found.id

    async def claim(self, email_id: uuid.UUID, *, hold: timedelta) -> QueuedEmail | None:
        r, now = self.by_id(email_id), self.clock.now()
        if r.state != QueuedState.PENDING or (r.due_at and r.due_at > now) or (r.held_until and r.held_until > now):
            return None
        r.attempts += 1
        r.held_until = now + hold
        return QueuedEmail(r.id, r.message, r.attempts, r.give_up_at)

    async def settle(self, email_id: uuid.UUID, *, state: str, error: str | None = None) -> None:
        r = self.by_id(email_id)
        if r.state == QueuedState.PENDING:
            r.state, r.error, r.held_until = state, error, None

    async def retry_later(self, email_id: uuid.UUID, *, after: timedelta, error: str) -> None:
        r = self.by_id(email_id)
        r.due_at, r.held_until, r.error = self.clock.now() + after, None, error

    async def due(self, *, limit: int) -> list[uuid.UUID]:
        now = self.clock.now()
        return [
            r.id
            for r in self.records.values()
            if r.state == QueuedState.PENDING
            and (r.due_at is None or r.due_at <= now)
            and (r.held_until is None or r.held_until <= now)
        ][:limit]

    async def purge(self, *, settled_before: timedelta) -> int:
        self.purged_before.append(settled_before)
        return 0


@dataclass
class ScriptedMailer:
    """Raises the scripted errors in turn, then accepts; keeps what it accepted."""

    script: list[Exception] = field(default_factory=list)
    sent: list[EmailMessage] = field(default_factory=list)
    tries: int = 0

    async def send(self, message: EmailMessage) -> None:
        self.tries += 1
        if self.script:
            raise self.script.pop(0)
        self.sent.append(message)


@dataclass
class World:
    clock: FakeClock
    outbound: FakeOutbound
    mailer: ScriptedMailer
    jobs: FakeJobQueue
    ports: MailPorts


def world(*script: Exception) -> World:
    clock = FakeClock()
    outbound, mailer, jobs = FakeOutbound(clock), ScriptedMailer(list(script)), FakeJobQueue()
    return World(clock, outbound, mailer, jobs, MailPorts(mailer=mailer, outbound=outbound, jobs=jobs, clock=clock))


def later() -> ServiceUnavailable:
    error = ServiceUnavailable("smtp")
    error.__cause__ = ConnectionRefusedError("refused")
    return error


async def test_an_accepted_message_is_sent_once_however_often_its_task_comes() -> None:
    w = world()
    assert await send_email("task-1", MESSAGE, ports=w.ports, policy=POLICY) == Delivery.SENT
    assert await send_email("task-1", MESSAGE, ports=w.ports, policy=POLICY) == Delivery.SKIPPED
    assert w.mailer.sent == [MESSAGE] and w.outbound.records["task-1"].state == QueuedState.SENT


async def test_a_refusal_for_good_is_settled_undeliverable_and_never_retried(caplog: pytest.LogCaptureFixture) -> None:
    w = world(MailUndeliverable("550 no such user"))
    assert await send_email("task-1", MESSAGE, ports=w.ports, policy=POLICY) == Delivery.UNDELIVERABLE
    w.clock.advance(7200)
    assert await send_due(ports=w.ports, policy=POLICY) == 0
    assert w.mailer.tries == 1 and w.outbound.records["task-1"].error == "550 no such user"
    assert caplog.text.count("refused for good") == 1


async def test_not_now_is_retried_after_a_growing_delay_with_jitter() -> None:
    # given a server that says "later" three times
    w = world(later(), later(), later())
    assert await send_email("task-1", MESSAGE, ports=w.ports, policy=POLICY) == Delivery.RETRYING
    record = w.outbound.records["task-1"]
    delays = []
    for _ in range(3):
        assert record.due_at is not None
        delays.append((record.due_at - w.clock.now()).total_seconds())
        # the sweep queues nothing before the message is due, and one attempt once it is
        assert await send_due(ports=w.ports, policy=POLICY) == 0
        w.clock.at = record.due_at
        w.jobs.kicked.clear()
        assert await send_due(ports=w.ports, policy=POLICY) == 1
        assert w.jobs.kicked == [(SEND_QUEUED_EMAIL_TASK, {"email_id": str(record.id)})]
        await send_queued(record.id, ports=w.ports, policy=POLICY)
    # then the delays grew (equal jitter: between half and all of 30, 60, 120 s) and the fourth try went
    assert 15 <= delays[0] <= 30 and 30 <= delays[1] <= 60 and 60 <= delays[2] <= 120
    assert record.state == QueuedState.SENT and record.attempts == 4 and w.mailer.sent == [MESSAGE]


async def test_a_message_still_refused_when_its_time_is_up_fails(caplog: pytest.LogCaptureFixture) -> None:
    w = world(*[later() for _ in range(50)])
    short = MailPolicy(give_up_seconds=100, retry_base_seconds=30, retry_max_seconds=600, hold_seconds=300)
    outcome = await send_email("task-1", MESSAGE, ports=w.ports, policy=short)
    record = w.outbound.records["task-1"]
    while outcome == Delivery.RETRYING:
        assert record.due_at is not None
        w.clock.at = record.due_at
        outcome = await send_queued(record.id, ports=w.ports, policy=short)
    assert outcome == Delivery.FAILED and record.state == QueuedState.FAILED
    assert w.clock.now() <= record.give_up_at and 2 <= record.attempts <= 4
    assert "ConnectionRefusedError" in (record.error or "")
    assert caplog.text.count("given up after") == 1


async def test_a_dead_workers_hold_runs_out_and_the_sweep_sends_it() -> None:
    w = world()
    email_id = await w.outbound.record("task-1", MESSAGE, give_up_after=timedelta(hours=1))
    assert await w.outbound.claim(email_id, hold=timedelta(seconds=300)) is not None  # then the worker died
    assert await send_due(ports=w.ports, policy=POLICY) == 0
    w.clock.advance(301)
    assert await send_due(ports=w.ports, policy=POLICY) == 1
    assert w.outbound.purged_before[-1] == timedelta(seconds=POLICY.keep_settled_seconds)
