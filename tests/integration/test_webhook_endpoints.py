"""Webhook endpoints, signing secrets, per-generation webhooks and the delivery log over GraphQL on PostgreSQL.

No worker reads the task stream here: deliveries stay PENDING, which is what the log and
redelivery tests look at (tests/integration/workers/test_webhook_deliveries.py sends them).
Every argument is the client's: hostile URLs and malformed ids are InvalidInput or NOT_FOUND,
never a request of ours, a stored row, or an error without a type.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from domain.generations import Generation, GenerationStatus
from domain.use_cases import webhook_outbox
from infrastructure.db.tables import GENERATION_WEBHOOKS, WEBHOOK_DELIVERIES, WEBHOOK_ENDPOINTS, WEBHOOK_SECRETS
from infrastructure.security.webhook_secrets import AesGcmSecretSealer
from tests.fixtures.app import (
    GraphQLClient,
    SettingsFactory,
    operator_grant,
    operator_model,
    register_user,
    running_app,
)
from tests.integration.user_references import rows_naming_user

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

CAP = 3
PASSWORD = "correct horse battery"
ALL = ["GENERATION_STARTED", "GENERATION_PROGRESS", "GENERATION_COMPLETED"]
LOCAL = "http://127.0.0.1:9/hook"

CREATE = """
mutation Create($url: String!, $events: [WebhookEventType!]!, $description: String! = "") {
  createWebhookEndpoint(input: {url: $url, events: $events, description: $description}) {
    __typename
    ... on CreateWebhookEndpointSuccess { secret endpoint { id url events description enabled } }
    ... on InvalidInput { code fields { field message } }
    ... on QuotaExceeded { code limit }
    ... on RateLimited { code }
  }
}
"""
UPDATE = """
mutation Update($id: ID!, $input: UpdateWebhookEndpointInput!) {
  updateWebhookEndpoint(id: $id, input: $input) {
    __typename
    ... on UpdateWebhookEndpointSuccess { endpoint { id url events enabled description } }
    ... on InvalidInput { fields { field } }
    ... on Error { code }
  }
}
"""
DELETE = """
mutation Delete($id: ID!) { deleteWebhookEndpoint(id: $id) {
  __typename ... on DeleteWebhookEndpointSuccess { id } ... on Error { code } } }
"""
ROTATE = """
mutation Rotate($id: ID!, $minutes: Int) { rotateWebhookSecret(id: $id, overlapMinutes: $minutes) {
  __typename
  ... on RotateWebhookSecretSuccess { endpoint { id } rotation { secret previousSecretExpiresAt } }
  ... on InvalidInput { fields { field } }
  ... on Error { code }
} }
"""
SIGNING = """
mutation Signing($minutes: Int) { rotateWebhookSigningSecret(overlapMinutes: $minutes) {
  __typename
  ... on WebhookSecretRotation { secret previousSecretExpiresAt }
  ... on InvalidInput { fields { field } }
  ... on Error { code }
} }
"""
ENDPOINTS = "query { webhookEndpoints { id url } }"
ENDPOINT = "query One($id: ID!) { webhookEndpoint(id: $id) { id } }"
GENERATE = """
mutation Generate($model: ID!, $webhook: GenerationWebhookInput) {
  generate(input: {modelId: $model, prompt: "a fox", webhook: $webhook}) {
    __typename
    ... on GenerateSuccess { generation { id status } }
    ... on InvalidInput { fields { field message } }
    ... on Error { code }
  }
}
"""
LOG = """
query Log($first: Int, $after: String, $filter: WebhookDeliveryFilter) {
  webhookDeliveries(first: $first, after: $after, filter: $filter) {
    edges { cursor node { id messageId eventType url status attempts endpointId generationId nextAttemptAt } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
REDELIVER = """
mutation Redeliver($id: ID!) { redeliverWebhook(deliveryId: $id) {
  __typename
  ... on RedeliverWebhookSuccess { delivery { id messageId status } }
  ... on Error { code }
} }
"""
DELETE_ACCOUNT = """
mutation DeleteAccount($password: String!) { deleteAccount(input: {password: $password}) { __typename } }
"""


@dataclass
class Env:
    client: GraphQLClient
    cached: tuple[str, uuid.UUID] | None = None

    async def one_caller(self) -> tuple[str, uuid.UUID]:
        """The same caller for every example of a generated test."""
        if self.cached is None:
            self.cached = await self.caller()
        return self.cached

    async def caller(self) -> tuple[str, uuid.UUID]:
        session = await register_user(self.client, f"w{uuid.uuid4().hex[:10]}@example.com", PASSWORD)
        return session["accessToken"], uuid.UUID(session["user"]["id"])

    async def gql(self, query: str, token: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = await self.client.execute(query, variables, token=token, expect_errors=True)
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data

    async def create(self, token: str, url: str = LOCAL, events: list[str] = ALL) -> dict[str, Any]:
        result: dict[str, Any] = (await self.gql(CREATE, token, {"url": url, "events": events}))[
            "createWebhookEndpoint"
        ]
        return result

    async def count(self, table: Any, user_id: uuid.UUID) -> int:
        async with self.client.container.engine.connect() as conn:
            stmt = select(func.count()).select_from(table).where(table.c.user_id == user_id)
            return int((await conn.execute(stmt)).scalar_one())

    async def message(self, user_id: uuid.UUID, *, generation_id: uuid.UUID | None = None) -> None:
        """A completion message of a made-up generation, written as a worker's change writes it."""
        c = self.client.container
        now = datetime.now(UTC)
        generation = Generation(
            generation_id or uuid.uuid4(), user_id, uuid.uuid4(), "p", GenerationStatus.SUCCEEDED, now, now
        )
        async with c.uow() as uow:
            await webhook_outbox.record(
                uow, generation, GenerationStatus.PROCESSING, now, webhook_outbox.DEFAULT_OUTBOX
            )
            await uow.commit()


@pytest.fixture
async def env(make_settings: SettingsFactory, clean_postgres: str, clean_redis: str) -> AsyncIterator[Env]:
    settings = make_settings(
        database_url=clean_postgres,
        redis_url=clean_redis,
        webhook_allowed_networks=["127.0.0.1/32"],
        webhook_max_endpoints=CAP,
        rate_limit_webhooks=1000,
        rate_limit_register=100_000,
        rate_limit_register_account=100_000,
        url_signing_secret="webhook-endpoint-tests-url-secret-0123456789",
    )
    async with running_app(settings) as client:
        yield Env(client)


@pytest.fixture
async def strict(make_settings: SettingsFactory, clean_postgres: str, clean_redis: str) -> AsyncIterator[Env]:
    """No allowlist, http refused (as in production)."""
    settings = make_settings(database_url=clean_postgres, redis_url=clean_redis, webhook_allow_http=False)
    async with running_app(settings) as client:
        yield Env(client)


async def test_an_endpoint_is_registered_with_a_secret_shown_once_and_stored_sealed(env: Env) -> None:
    token, user_id = await env.caller()
    made = await env.create(token, events=["GENERATION_COMPLETED"])
    assert made["__typename"] == "CreateWebhookEndpointSuccess", made
    assert made["secret"].startswith("whsec_")
    assert made["endpoint"] == {
        "id": made["endpoint"]["id"],
        "url": LOCAL,
        "events": ["GENERATION_COMPLETED"],
        "description": "",
        "enabled": True,
    }
    assert (await env.gql(ENDPOINTS, token))["webhookEndpoints"] == [{"id": made["endpoint"]["id"], "url": LOCAL}]
    # the secret is not in the database as it was shown, but opens with the deployment's key
    async with env.client.container.engine.connect() as conn:
        [sealed] = (await conn.execute(select(WEBHOOK_SECRETS.c.sealed))).scalars().all()
    assert made["secret"] not in sealed and made["secret"].removeprefix("whsec_") not in sealed
    key = env.client.container.settings.purpose_secret("webhook-secrets")
    assert AesGcmSecretSealer(key).open(sealed) == made["secret"]


async def test_without_the_allowlist_a_loopback_or_http_url_is_refused(strict: Env) -> None:
    token, user_id = await strict.caller()
    for url in ("https://127.0.0.1/hook", "https://[::1]/hook", "https://169.254.169.254/latest", "http://8.8.8.8/h"):
        refused = await strict.create(token, url=url)
        assert refused["__typename"] == "InvalidInput", (url, refused)
        assert [f["field"] for f in refused["fields"]] == ["url"]
    assert await strict.count(WEBHOOK_ENDPOINTS, user_id) == 0


#: An address in a forbidden range (loopback but the allowlisted 127.0.0.1, private, CGNAT, link-local, multicast).
FORBIDDEN_IPS = st.one_of(
    st.tuples(st.just(10), st.integers(0, 255), st.integers(0, 255), st.integers(0, 255)),
    st.tuples(st.just(127), st.integers(0, 255), st.integers(0, 255), st.integers(2, 255)),
    st.tuples(st.just(169), st.just(254), st.integers(0, 255), st.integers(0, 255)),
    st.tuples(st.just(172), st.integers(16, 31), st.integers(0, 255), st.integers(0, 255)),
    st.tuples(st.just(192), st.just(168), st.integers(0, 255), st.integers(0, 255)),
    st.tuples(st.just(100), st.integers(64, 127), st.integers(0, 255), st.integers(0, 255)),
    st.tuples(st.integers(224, 255), st.integers(0, 255), st.integers(0, 255), st.integers(0, 255)),
).map(lambda parts: "https://{}.{}.{}.{}/x".format(*parts))
HOSTILE_URLS = st.one_of(
    st.text(max_size=80).filter(lambda t: not t.lower().startswith(("http:", "https:"))),
    FORBIDDEN_IPS,
    st.builds(lambda n: "https://example.com/" + "a" * n, st.integers(2050, 4000)),
    st.sampled_from(["ftp://example.com/x", "https://user:pw@[fe80::1%25eth0]/", "javascript:alert(1)", "https://"]),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(url=HOSTILE_URLS)
async def test_hostile_urls_are_invalid_input_on_url_and_store_nothing(env: Env, url: str) -> None:
    token, user_id = await env.one_caller()
    refused = await env.create(token, url=url)
    assert refused["__typename"] == "InvalidInput", (url, refused)
    assert {f["field"] for f in refused["fields"]} == {"url"}
    assert await env.count(WEBHOOK_ENDPOINTS, user_id) == 0


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(st.sampled_from(ALL), max_size=6))
async def test_events_are_any_nonempty_subset(env: Env, events: list[str]) -> None:
    token, _ = await env.caller()
    made = await env.create(token, events=events)
    if events:
        assert made["__typename"] == "CreateWebhookEndpointSuccess", made
        assert set(made["endpoint"]["events"]) == set(events)
    else:
        assert made["__typename"] == "InvalidInput" and made["fields"][0]["field"] == "events"


async def test_another_users_endpoint_is_not_found_and_untouched(env: Env) -> None:
    owner, _ = await env.caller()
    stranger, _ = await env.caller()
    endpoint_id = (await env.create(owner))["endpoint"]["id"]
    for query, variables in (
        (UPDATE, {"id": endpoint_id, "input": {"enabled": False}}),
        (DELETE, {"id": endpoint_id}),
        (ROTATE, {"id": endpoint_id}),
    ):
        answer = next(iter((await env.gql(query, stranger, variables)).values()))
        assert answer == {"__typename": "NotFound", "code": "NOT_FOUND"}, answer
    assert (await env.gql(ENDPOINT, stranger, {"id": endpoint_id}))["webhookEndpoint"] is None
    assert (await env.gql(ENDPOINTS, stranger))["webhookEndpoints"] == []
    for bad in ("not-a-uuid", str(uuid.uuid4()), ""):
        answer = (await env.gql(DELETE, owner, {"id": bad}))["deleteWebhookEndpoint"]
        assert answer["__typename"] == "NotFound", answer
    assert (await env.gql(ENDPOINT, owner, {"id": endpoint_id}))["webhookEndpoint"] == {"id": endpoint_id}


async def test_concurrent_creations_stop_at_the_cap(env: Env) -> None:
    token, user_id = await env.caller()
    answers = await asyncio.gather(*(env.create(token) for _ in range(CAP + 5)))
    kinds = sorted(a["__typename"] for a in answers)
    assert kinds == ["CreateWebhookEndpointSuccess"] * CAP + ["QuotaExceeded"] * 5, kinds
    assert await env.count(WEBHOOK_ENDPOINTS, user_id) == CAP


async def test_update_checks_the_new_url_and_disabling_stops_pending_deliveries(env: Env) -> None:
    token, user_id = await env.caller()
    endpoint_id = (await env.create(token))["endpoint"]["id"]
    refused = await env.gql(UPDATE, token, {"id": endpoint_id, "input": {"url": "https://10.1.2.3/x"}})
    assert refused["updateWebhookEndpoint"]["__typename"] == "InvalidInput"
    await env.message(user_id)
    changed = await env.gql(
        UPDATE, token, {"id": endpoint_id, "input": {"enabled": False, "events": ["GENERATION_STARTED"]}}
    )
    assert changed["updateWebhookEndpoint"]["endpoint"]["enabled"] is False
    log = (await env.gql(LOG, token))["webhookDeliveries"]["edges"]
    assert [e["node"]["status"] for e in log] == ["FAILED"]


async def test_rotations_return_a_new_secret_and_the_overlap(env: Env) -> None:
    token, _ = await env.caller()
    made = await env.create(token)
    rotated = (await env.gql(ROTATE, token, {"id": made["endpoint"]["id"], "minutes": 30}))["rotateWebhookSecret"]
    secret, until = rotated["rotation"]["secret"], rotated["rotation"]["previousSecretExpiresAt"]
    assert secret.startswith("whsec_") and secret != made["secret"]
    left = datetime.fromisoformat(until) - datetime.now(UTC)
    assert timedelta(minutes=29) < left <= timedelta(minutes=30)
    for minutes in (-1, 7 * 24 * 60 + 1):
        bad = await env.gql(ROTATE, token, {"id": made["endpoint"]["id"], "minutes": minutes})
        answer = bad["rotateWebhookSecret"]
        assert (answer["__typename"], answer["fields"]) == ("InvalidInput", [{"field": "overlapMinutes"}]), answer
    first = (await env.gql(SIGNING, token))["rotateWebhookSigningSecret"]
    assert first["secret"].startswith("whsec_") and first["previousSecretExpiresAt"] is None
    second = (await env.gql(SIGNING, token, {"minutes": 0}))["rotateWebhookSigningSecret"]
    assert second["secret"] != first["secret"] and second["previousSecretExpiresAt"] is not None


async def test_a_generation_webhook_needs_the_signing_secret_and_a_callable_url(env: Env) -> None:
    token, user_id = await env.caller()
    await operator_grant(env.client, str(user_id), 100)
    model = await operator_model(env.client)
    hook = {"url": LOCAL, "events": ["GENERATION_COMPLETED"]}
    # without a signing secret: InvalidInput on webhook, nothing started, nothing reserved
    refused = (await env.gql(GENERATE, token, {"model": model, "webhook": hook}))["generate"]
    assert refused["__typename"] == "InvalidInput" and refused["fields"][0]["field"] == "webhook", refused
    assert "rotateWebhookSigningSecret" in refused["fields"][0]["message"]
    await env.gql(SIGNING, token)
    forbidden = {"url": "https://192.168.1.1/x", "events": ["GENERATION_COMPLETED"]}
    refused = (await env.gql(GENERATE, token, {"model": model, "webhook": forbidden}))["generate"]
    assert refused["__typename"] == "InvalidInput" and refused["fields"][0]["field"] == "webhook.url", refused
    no_events = await env.gql(GENERATE, token, {"model": model, "webhook": {"url": LOCAL, "events": []}})
    assert no_events["generate"]["fields"][0]["field"] == "webhook.events"
    async with env.client.container.engine.connect() as conn:
        started = await conn.execute(text("SELECT count(*) FROM generations WHERE user_id = :u"), {"u": user_id})
        assert started.scalar_one() == 0
    # with one: started, its webhook stored (events default to the completion)
    made = (await env.gql(GENERATE, token, {"model": model, "webhook": {"url": LOCAL}}))["generate"]
    assert made["__typename"] == "GenerateSuccess", made
    async with env.client.container.engine.connect() as conn:
        row = (await conn.execute(select(GENERATION_WEBHOOKS))).one()
    assert (str(row.generation_id), row.url, row.events) == (made["generation"]["id"], LOCAL, "generation.completed")


async def test_the_delivery_log_pages_and_filters_and_is_the_viewers_only(env: Env) -> None:
    token, user_id = await env.caller()
    stranger, stranger_id = await env.caller()
    endpoint_id = (await env.create(token))["endpoint"]["id"]
    await env.create(stranger)
    generation_id = uuid.uuid4()
    await env.message(user_id, generation_id=generation_id)
    await env.message(user_id)
    await env.message(user_id)
    await env.message(stranger_id)
    first = (await env.gql(LOG, token, {"first": 2}))["webhookDeliveries"]
    assert len(first["edges"]) == 2 and first["pageInfo"]["hasNextPage"]
    rest = (await env.gql(LOG, token, {"first": 2, "after": first["pageInfo"]["endCursor"]}))["webhookDeliveries"]
    assert len(rest["edges"]) == 1 and not rest["pageInfo"]["hasNextPage"]
    nodes = [e["node"] for e in first["edges"] + rest["edges"]]
    assert {n["endpointId"] for n in nodes} == {endpoint_id}
    assert {(n["status"], n["attempts"], n["eventType"]) for n in nodes} == {("PENDING", 0, "GENERATION_COMPLETED")}
    assert all(n["messageId"].startswith("msg_") and n["nextAttemptAt"] for n in nodes)
    one = (await env.gql(LOG, token, {"filter": {"generationId": str(generation_id)}}))["webhookDeliveries"]
    assert [e["node"]["generationId"] for e in one["edges"]] == [str(generation_id)]
    assert (await env.gql(LOG, token, {"filter": {"status": "DELIVERED"}}))["webhookDeliveries"]["edges"] == []
    body = await env.client.execute(LOG, {"after": "garbage"}, token=token, expect_errors=True)
    assert body.get("errors") or body["data"] is None or body["data"]["webhookDeliveries"] is None


async def test_redelivery_is_replay_safe_owned_and_rate_limited(env: Env) -> None:
    token, user_id = await env.caller()
    stranger, _ = await env.caller()
    await env.create(token)
    await env.message(user_id)
    [edge] = (await env.gql(LOG, token))["webhookDeliveries"]["edges"]
    delivery_id = edge["node"]["id"]
    # pending already: the answer is that delivery itself, nothing new
    same = (await env.gql(REDELIVER, token, {"id": delivery_id}))["redeliverWebhook"]
    assert same["delivery"]["id"] == delivery_id
    # settled: concurrent redeliveries make one new delivery of the same message
    async with env.client.container.engine.begin() as conn:
        await conn.execute(WEBHOOK_DELIVERIES.update().values(status="failed"))
    answers = await asyncio.gather(*(env.gql(REDELIVER, token, {"id": delivery_id}) for _ in range(6)))
    made = {a["redeliverWebhook"]["delivery"]["id"] for a in answers}
    assert len(made) == 1 and delivery_id not in made
    assert {a["redeliverWebhook"]["delivery"]["messageId"] for a in answers} == {edge["node"]["messageId"]}
    assert await env.count(WEBHOOK_DELIVERIES, user_id) == 2
    for who, target in ((stranger, delivery_id), (token, str(uuid.uuid4())), (token, "nope")):
        assert (await env.gql(REDELIVER, who, {"id": target}))["redeliverWebhook"]["__typename"] == "NotFound"


async def test_deleting_the_account_deletes_its_webhooks(env: Env) -> None:
    token, user_id = await env.caller()
    await env.create(token)
    await env.gql(SIGNING, token)
    await env.message(user_id)
    assert (await env.gql(DELETE_ACCOUNT, token, {"password": PASSWORD}))["deleteAccount"]["__typename"] == (
        "DeleteAccountSuccess"
    )
    async with env.client.container.engine.connect() as conn:
        left = await rows_naming_user(conn, user_id)
    assert {"webhook_endpoints.user_id", "webhook_deliveries.user_id", "webhook_secrets.user_id"} <= set(left)
    assert left == dict.fromkeys(left, 0), left
