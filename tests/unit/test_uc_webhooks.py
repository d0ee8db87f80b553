"""The webhook use cases with hand-written fakes: which change makes which message, the progress
throttle, each outcome of an attempt, endpoints' rules, secrets' rotation, redelivery."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import InvalidInput, InvalidState, NotFound, Problems, QuotaExceeded, RateLimited
from domain.generations import Generation, GenerationStatus
from domain.pagination import PageRequest
from domain.use_cases import webhook_deliveries, webhook_endpoints, webhook_outbox
from domain.use_cases.rate_limits import RateRule
from domain.use_cases.webhook_deliveries import DeliveryPolicy, DeliveryPorts
from domain.use_cases.webhook_endpoints import EndpointChange, EndpointPolicy, EndpointPorts
from domain.use_cases.webhook_outbox import DELIVER_TASK, OutboxPolicy
from domain.users import Principal
from domain.webhook_endpoints import MAX_OVERLAP, GenerationWebhook, events_of, overlap_of
from domain.webhook_messages import DeliveryFilter, DeliveryStatus, event_for, payload
from domain.webhooks import (
    DeliveryFailure,
    DeliveryOutcome,
    ForbiddenDestination,
    WebhookEvent,
    retry_delay,
    verify,
)
from tests.unit.fakes import Fakes, principal_of

S = GenerationStatus
DELAYS = (timedelta(seconds=5), timedelta(seconds=30))
ALL = [e.value for e in WebhookEvent]


class PlainSealer:
    """Reversible and visibly not the secret (the real one is AES-GCM, tested with the database)."""

    def seal(self, secret: str) -> str:
        return "sealed:" + secret[::-1]

    def open(self, sealed: str) -> str:
        if not sealed.startswith("sealed:"):
            raise ValueError("not sealed here")
        return sealed[len("sealed:") :][::-1]


@dataclass
class Destinations:
    refused: set[str] = field(default_factory=set)

    async def check(self, url: str) -> None:
        if url in self.refused or not url.startswith(("https://", "http://")):
            raise ForbiddenDestination(DeliveryFailure.FORBIDDEN_ADDRESS, "resolves to a forbidden address")


@dataclass
class Sender:
    answers: list[DeliveryOutcome] = field(default_factory=list)
    sent: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    async def send(self, url: str, *, headers: Mapping[str, str], body: bytes) -> DeliveryOutcome:
        self.sent.append((url, dict(headers), body))
        if self.answers:
            return self.answers.pop(0)
        return DeliveryOutcome(200, None, "ok", 1)


FAILED_500 = DeliveryOutcome(500, DeliveryFailure.HTTP_STATUS, "500", 1)


@dataclass
class World:
    fakes: Fakes = field(default_factory=Fakes)
    sender: Sender = field(default_factory=Sender)
    destinations: Destinations = field(default_factory=Destinations)

    def __post_init__(self) -> None:
        f = self.fakes
        self.user = principal_of(f.user())
        self.endpoint_ports = EndpointPorts(
            uow=f.uow_factory(), destinations=self.destinations, sealer=PlainSealer(), clock=f.clock, limiter=f.limiter
        )
        self.delivery_ports = DeliveryPorts(
            uow=f.uow_factory(), sender=self.sender, sealer=PlainSealer(), jobs=f.jobs, clock=f.clock, limiter=f.limiter
        )
        self.policy = EndpointPolicy(max_endpoints=3, rate=RateRule(100, 60))
        self.delivery_policy = DeliveryPolicy(delays=DELAYS, jitter=lambda: 0.0, redeliver_rate=RateRule(100, 60))

    async def endpoint(self, events: list[str] = ALL, who: Principal | None = None, url: str = "https://a.example/h"):  # type: ignore[no-untyped-def]
        return await webhook_endpoints.create(
            who or self.user, url=url, events=events, description="", ports=self.endpoint_ports, policy=self.policy
        )

    def generation(self, status: GenerationStatus, progress: float = 0.0) -> Generation:
        now = self.fakes.clock.now()
        return Generation(uuid.uuid4(), self.user.user_id, uuid.uuid4(), "p", status, now, now, progress=progress)

    async def change(self, generation: Generation, previous: GenerationStatus | None) -> list[uuid.UUID]:
        uow = self.fakes.uow_factory()()
        async with uow:
            sends = await webhook_outbox.record(
                uow, generation, previous, self.fakes.clock.now(), OutboxPolicy(timedelta(seconds=10))
            )
            await uow.commit()
        await webhook_outbox.dispatch(self.fakes.jobs, sends)
        return [d.delivery_id for d in sends]

    async def deliver(self, delivery_id: uuid.UUID) -> DeliveryStatus | None:
        token = next(
            (
                uuid.UUID(k["token"])
                for n, k in reversed(self.fakes.jobs.kicked)
                if n == DELIVER_TASK and k["delivery_id"] == str(delivery_id)
            ),
            None,
        )
        return await webhook_deliveries.deliver(
            delivery_id, token, ports=self.delivery_ports, policy=self.delivery_policy
        )

    async def log(self) -> list:  # type: ignore[type-arg]
        uow = self.fakes.uow_factory()()
        async with uow:
            return (await uow.webhooks.deliveries(self.user.user_id, DeliveryFilter(), PageRequest(100))).items


# ---------------------------------------------------------------- what a change sends


@pytest.mark.parametrize(
    ("previous", "status", "event"),
    [
        (S.SUBMITTING, S.PROCESSING, WebhookEvent.GENERATION_STARTED),
        (S.QUEUED, S.PROCESSING, WebhookEvent.GENERATION_STARTED),
        (S.PROCESSING, S.PROCESSING, WebhookEvent.GENERATION_PROGRESS),
        (S.PROCESSING, S.SUCCEEDED, WebhookEvent.GENERATION_COMPLETED),
        (S.QUEUED, S.CANCELED, WebhookEvent.GENERATION_COMPLETED),
        (S.SUBMITTING, S.FAILED, WebhookEvent.GENERATION_COMPLETED),
        (S.PROCESSING, S.EXPIRED, WebhookEvent.GENERATION_COMPLETED),
        (None, S.QUEUED, None),
        (S.QUEUED, S.SUBMITTING, None),
        (S.SUCCEEDED, S.SUCCEEDED, None),  # a thumbnail settling after the end
    ],
)
def test_each_change_is_the_event_it_should_be(
    previous: GenerationStatus | None, status: GenerationStatus, event: WebhookEvent | None
) -> None:
    w = World()
    assert event_for(previous, w.generation(status)) is event


def test_the_payload_has_the_standard_shape_and_the_api_ids() -> None:
    w = World()
    g = w.generation(S.FAILED)
    g.error_code = "PROVIDER_FAILED"
    body = payload(WebhookEvent.GENERATION_COMPLETED, g, S.PROCESSING, w.fakes.clock.now())
    assert body["type"] == "generation.completed" and body["timestamp"].startswith("2026-")
    assert body["data"]["id"] == str(g.id)
    assert (body["data"]["status"], body["data"]["previousStatus"], body["data"]["errorCode"]) == (
        "FAILED",
        "PROCESSING",
        "PROVIDER_FAILED",
    )
    assert body["data"]["outputIds"] == []


async def test_a_change_makes_one_delivery_per_endpoint_that_asked_for_its_event() -> None:
    w = World()
    everything, _ = await w.endpoint(ALL)
    await w.endpoint(["generation.completed"])
    # when a generation starts
    sent = await w.change(w.generation(S.PROCESSING), S.SUBMITTING)
    # then only the endpoint that asked for starts gets it, queued at once
    [only] = await w.log()
    assert sent == [only.id] and only.endpoint_id == everything.id and only.event is WebhookEvent.GENERATION_STARTED
    assert w.fakes.jobs.kicked[-1][0] == DELIVER_TASK


async def test_a_disabled_endpoint_gets_nothing_and_another_users_endpoint_never_does() -> None:
    w = World()
    endpoint, _ = await w.endpoint(ALL)
    await webhook_endpoints.update(
        w.user, endpoint.id, EndpointChange(enabled=False), ports=w.endpoint_ports, policy=w.policy
    )
    stranger = principal_of(w.fakes.user())
    await w.endpoint(ALL, who=stranger)
    assert await w.change(w.generation(S.SUCCEEDED), S.PROCESSING) == []


async def test_progress_messages_are_throttled_per_generation_and_endpoint() -> None:
    w = World()
    await w.endpoint(["generation.progress"])
    g = w.generation(S.PROCESSING, 0.2)
    assert len(await w.change(g, S.PROCESSING)) == 1
    w.fakes.clock.advance(3)
    assert await w.change(g, S.PROCESSING) == []  # within the interval
    w.fakes.clock.advance(8)
    assert len(await w.change(g, S.PROCESSING)) == 1  # the interval passed


async def test_a_generations_own_webhook_gets_its_events_only() -> None:
    w = World()
    g = w.generation(S.SUCCEEDED)
    uow = w.fakes.uow_factory()()
    async with uow:
        await uow.webhooks.add_generation_webhook(
            GenerationWebhook(
                g.id,
                w.user.user_id,
                "https://own.example/h",
                frozenset({WebhookEvent.GENERATION_COMPLETED}),
                g.created_at,
            )
        )
        await uow.commit()
    assert await w.change(w.generation(S.SUCCEEDED), S.PROCESSING) == []  # another generation
    [delivery] = await w.change(g, S.PROCESSING)
    [row] = await w.log()
    assert row.id == delivery and row.endpoint_id is None and row.url == "https://own.example/h"


# ---------------------------------------------------------------- attempts


async def test_a_delivered_attempt_is_signed_with_the_endpoints_secret() -> None:
    w = World()
    _, secret = await w.endpoint()
    [delivery] = await w.change(w.generation(S.SUCCEEDED), S.PROCESSING)
    assert await w.deliver(delivery) is DeliveryStatus.DELIVERED
    [(url, headers, body)] = w.sender.sent
    assert url == "https://a.example/h"
    assert verify(secret, headers, body, now=int(w.fakes.clock.now().timestamp()))
    assert json.loads(body)["type"] == "generation.completed"
    [row] = await w.log()
    assert (row.status, row.attempts, row.last_status_code) == (DeliveryStatus.DELIVERED, 1, 200)


async def test_failed_attempts_are_retried_on_the_schedule_with_the_same_id_then_fail() -> None:
    w = World()
    await w.endpoint()
    [delivery] = await w.change(w.generation(S.SUCCEEDED), S.PROCESSING)
    w.sender.answers = [FAILED_500] * 3
    assert await w.deliver(delivery) is DeliveryStatus.PENDING
    # not due yet: nothing is attempted, the sweep queues nothing
    assert await w.deliver(delivery) is None
    assert await webhook_deliveries.sweep(ports=w.delivery_ports, policy=w.delivery_policy) == 0
    w.fakes.clock.advance(5)
    assert await webhook_deliveries.sweep(ports=w.delivery_ports, policy=w.delivery_policy) == 1
    assert await w.deliver(delivery) is DeliveryStatus.PENDING
    w.fakes.clock.advance(30)
    await webhook_deliveries.sweep(ports=w.delivery_ports, policy=w.delivery_policy)
    assert await w.deliver(delivery) is DeliveryStatus.FAILED
    ids = {h["webhook-id"] for _, h, _ in w.sender.sent}
    assert len(w.sender.sent) == 3 and len(ids) == 1
    [row] = await w.log()
    assert (row.status, row.attempts, row.last_failure, row.next_attempt_at) == (
        DeliveryStatus.FAILED,
        3,
        "HTTP_STATUS",
        None,
    )


async def test_a_duplicate_task_message_attempts_nothing_twice() -> None:
    w = World()
    await w.endpoint()
    [delivery] = await w.change(w.generation(S.SUCCEEDED), S.PROCESSING)
    assert await w.deliver(delivery) is DeliveryStatus.DELIVERED
    assert await w.deliver(delivery) is None
    assert len(w.sender.sent) == 1


async def test_a_disabled_endpoints_pending_delivery_stops_without_a_request() -> None:
    w = World()
    endpoint, _ = await w.endpoint()
    [delivery] = await w.change(w.generation(S.SUCCEEDED), S.PROCESSING)
    await webhook_endpoints.update(
        w.user, endpoint.id, EndpointChange(enabled=False), ports=w.endpoint_ports, policy=w.policy
    )
    assert await w.deliver(delivery) is None
    [row] = await w.log()
    assert (row.status, row.last_failure) == (DeliveryStatus.FAILED, "ENDPOINT_DISABLED") and w.sender.sent == []


async def test_a_deleted_endpoint_takes_its_deliveries_with_it() -> None:
    w = World()
    endpoint, _ = await w.endpoint()
    [delivery] = await w.change(w.generation(S.SUCCEEDED), S.PROCESSING)
    await webhook_endpoints.delete(w.user, endpoint.id, ports=w.endpoint_ports, policy=w.policy)
    assert await w.deliver(delivery) is None and await w.log() == [] and w.sender.sent == []


async def test_a_rotated_secret_signs_beside_the_new_one_until_the_overlap_ends() -> None:
    w = World()
    endpoint, old = await w.endpoint()
    rotation = await webhook_endpoints.rotate_endpoint_secret(
        w.user, endpoint.id, 60, ports=w.endpoint_ports, policy=w.policy
    )
    assert rotation.previous_expires_at == w.fakes.clock.now() + timedelta(minutes=60)
    [first] = await w.change(w.generation(S.SUCCEEDED), S.PROCESSING)
    await w.deliver(first)
    now = int(w.fakes.clock.now().timestamp())
    _, headers, body = w.sender.sent[-1]
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert verify(old, headers, body, now=now) and verify(rotation.secret, headers, body, now=now)
    # after the overlap only the new secret signs
    w.fakes.clock.advance(3601)
    [second] = await w.change(w.generation(S.SUCCEEDED), S.PROCESSING)
    await w.deliver(second)
    now = int(w.fakes.clock.now().timestamp())
    _, headers, body = w.sender.sent[-1]
    assert not verify(old, headers, body, now=now) and verify(rotation.secret, headers, body, now=now)


async def test_a_second_rotation_retires_the_older_secret_at_once() -> None:
    w = World()
    endpoint, first = await w.endpoint()
    rotate = webhook_endpoints.rotate_endpoint_secret
    second = await rotate(w.user, endpoint.id, None, ports=w.endpoint_ports, policy=w.policy)
    third = await rotate(w.user, endpoint.id, None, ports=w.endpoint_ports, policy=w.policy)
    [delivery] = await w.change(w.generation(S.SUCCEEDED), S.PROCESSING)
    await w.deliver(delivery)
    _, headers, body = w.sender.sent[-1]
    now = int(w.fakes.clock.now().timestamp())
    assert [verify(s, headers, body, now=now) for s in (first, second.secret, third.secret)] == [False, True, True]


async def test_an_unreadable_secret_fails_the_delivery_without_a_request() -> None:
    w = World()
    await w.endpoint()
    # sealed with another deployment's key (URL_SIGNING_SECRET changed since)
    for key, record in list(w.fakes.db.webhook_secrets.items()):
        w.fakes.db.webhook_secrets[key] = dataclasses.replace(record, sealed="another-key:x")
    [delivery] = await w.change(w.generation(S.SUCCEEDED), S.PROCESSING)
    assert await w.deliver(delivery) is DeliveryStatus.FAILED and w.sender.sent == []


# ---------------------------------------------------------------- endpoints' rules


async def test_another_users_endpoint_is_not_found_for_every_call() -> None:
    w = World()
    endpoint, _ = await w.endpoint()
    stranger = principal_of(w.fakes.user())
    p, pol = w.endpoint_ports, w.policy
    with pytest.raises(NotFound):
        await webhook_endpoints.update(stranger, endpoint.id, EndpointChange(enabled=False), ports=p, policy=pol)
    with pytest.raises(NotFound):
        await webhook_endpoints.delete(stranger, endpoint.id, ports=p, policy=pol)
    with pytest.raises(NotFound):
        await webhook_endpoints.rotate_endpoint_secret(stranger, endpoint.id, None, ports=p, policy=pol)
    with pytest.raises(NotFound):
        await webhook_endpoints.endpoint(stranger, endpoint.id, uow_factory=w.fakes.uow_factory())
    assert (await webhook_endpoints.endpoint(w.user, endpoint.id, uow_factory=w.fakes.uow_factory())).enabled


async def test_the_endpoint_cap_is_quota_exceeded() -> None:
    w = World()
    for _ in range(3):
        await w.endpoint()
    with pytest.raises(QuotaExceeded):
        await w.endpoint()


async def test_a_refused_destination_is_invalid_input_on_url_and_nothing_is_stored() -> None:
    w = World()
    w.destinations.refused.add("https://10.0.0.1/h")
    with pytest.raises(InvalidInput) as refused:
        await w.endpoint(url="https://10.0.0.1/h")
    assert [p.field for p in refused.value.fields] == ["url"]
    assert w.fakes.db.webhook_endpoints == {}


async def test_management_calls_are_rate_limited() -> None:
    w = World()
    w.policy = EndpointPolicy(max_endpoints=10, rate=RateRule(2, 60))
    await w.endpoint()
    await w.endpoint()
    with pytest.raises(RateLimited):
        await w.endpoint()


@given(st.lists(st.text(max_size=30), max_size=5))
def test_event_lists_name_known_types_only(values: list[str]) -> None:
    problems = Problems()
    found = events_of(values, "events", problems)
    known = {e.value for e in WebhookEvent} | {e.name for e in WebhookEvent}
    if values and all(v in known for v in values):
        assert found and not problems.items
    else:
        assert problems.items and all(p.field == "events" for p in problems.items)


@given(st.integers())
def test_overlaps_are_capped(minutes: int) -> None:
    if 0 <= minutes <= MAX_OVERLAP.total_seconds() // 60:
        assert overlap_of(minutes) == timedelta(minutes=minutes)
    else:
        with pytest.raises(InvalidInput):
            overlap_of(minutes)


def test_the_retry_schedule_is_a_parameter() -> None:
    assert retry_delay(1, 0.0, DELAYS) == DELAYS[0]
    assert retry_delay(2, 1.0, DELAYS) == DELAYS[1] * 1.2
    assert retry_delay(3, 0.0, DELAYS) is None
    assert retry_delay(1, 0.0) == timedelta(seconds=5)


# ---------------------------------------------------------------- redelivery


async def test_a_redelivery_is_the_same_message_and_replays_answer_the_pending_one() -> None:
    w = World()
    await w.endpoint()
    [delivery] = await w.change(w.generation(S.SUCCEEDED), S.PROCESSING)
    await w.deliver(delivery)
    ports, policy = w.delivery_ports, w.delivery_policy
    again = await webhook_deliveries.redeliver(w.user, delivery, ports=ports, policy=policy)
    replay = await webhook_deliveries.redeliver(w.user, delivery, ports=ports, policy=policy)
    assert again.id == replay.id != delivery and again.status is DeliveryStatus.PENDING
    assert await w.deliver(again.id) is DeliveryStatus.DELIVERED
    assert len({h["webhook-id"] for _, h, _ in w.sender.sent}) == 1 and len(w.sender.sent) == 2


async def test_redelivering_another_users_delivery_or_a_disabled_endpoints_is_refused() -> None:
    w = World()
    endpoint, _ = await w.endpoint()
    [delivery] = await w.change(w.generation(S.SUCCEEDED), S.PROCESSING)
    ports, policy = w.delivery_ports, w.delivery_policy
    with pytest.raises(NotFound):
        await webhook_deliveries.redeliver(principal_of(w.fakes.user()), delivery, ports=ports, policy=policy)
    with pytest.raises(NotFound):
        await webhook_deliveries.redeliver(w.user, uuid.uuid4(), ports=ports, policy=policy)
    await webhook_endpoints.update(
        w.user, endpoint.id, EndpointChange(enabled=False), ports=w.endpoint_ports, policy=w.policy
    )
    with pytest.raises(InvalidState):
        await webhook_deliveries.redeliver(w.user, delivery, ports=ports, policy=policy)
