"""The generated Python client (sdk/python/genhub_client) against a real `genhub serve`.

It is imported from the checkout as a partner gets it after `pip install ./sdk/python`; its
runtime dependencies (httpx, pydantic, websockets) are the project's. Every answer comes back
typed: the members of a result union as classes of their own, request errors as exceptions.
The server may deliver webhooks to 127.0.0.1 (WEBHOOK_ALLOWED_NETWORKS), where the tests'
receiver (tests/fixtures/webhook_inbox.py) listens; in this embedded mode it sends them itself.
"""

from __future__ import annotations

import asyncio
import io
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.webhooks import verify
from infrastructure.providers.png import render_png
from tests.fixtures.server import serve
from tests.fixtures.webhook_inbox import WebhookInbox

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "sdk" / "python"))

from genhub_client import (
    CreateApiKeyCreateApiKeyCreateApiKeySuccess,
    CreateApiKeyCreateApiKeyInvalidInput,
    CreateApiKeyCreateApiKeyQuotaExceeded,
    CreateApiKeyInput,
    CreateWebhookEndpointCreateWebhookEndpointCreateWebhookEndpointSuccess,
    CreateWebhookEndpointCreateWebhookEndpointInvalidInput,
    CreateWebhookEndpointInput,
    GenerateGenerateGenerateSuccess,
    GenerateGenerateInvalidInput,
    GenerateGenerateNotFound,
    GenerateInput,
    GenhubClient,
    GraphQLClientGraphQLMultiError,
    GraphQLClientHttpError,
    LoginInput,
    LoginLoginAuthPayload,
    LoginLoginInvalidCredentials,
    LoginLoginInvalidInput,
    LoginLoginRateLimited,
    RedeliverWebhookRedeliverWebhookNotFound,
    RedeliverWebhookRedeliverWebhookRedeliverWebhookSuccess,
    RevokeApiKeyRevokeApiKeyNotFound,
    RevokeApiKeyRevokeApiKeyRevokeApiKeySuccess,
    RotateWebhookSecretRotateWebhookSecretNotFound,
    RotateWebhookSecretRotateWebhookSecretRotateWebhookSecretSuccess,
    Upload,
    UploadChunkUploadChunkUploadChunkSuccess,
    WebhookDeliveriesWebhookDeliveriesEdgesNode,
    WebhookDeliveryFilter,
)
from genhub_client.enums import GenerationStatus, WebhookDeliveryStatus, WebhookEventType

pytestmark = pytest.mark.slow

SERVER_ENV = {
    "SIMULATED_STEPS": "2",
    "SIMULATED_STEP_SECONDS": "0.1",
    "POLL_INTERVAL_SECONDS": "1",
    "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1/32",  # the tests' receiver only
    "WEBHOOK_RETRY_DELAYS_SECONDS": "[0.2]",
    "WEBHOOK_SWEEP_SECONDS": "1",
}
DEMO = LoginInput(email="demo@genhub.local", password="demo-password-123")
REGISTER = """mutation ($input: RegisterInput!) { register(input: $input) { ... on AuthPayload { accessToken } } }"""


@dataclass(frozen=True)
class Api:
    url: str
    ws_url: str
    token: str  # the demo account's

    def client(self, token: str | None = None) -> GenhubClient:
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        return GenhubClient(url=self.url, headers=auth, ws_url=self.ws_url, ws_connection_init_payload=auth)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with serve(SERVER_ENV, tmp_path_factory.mktemp("python-client")) as server:

        async def sign_in() -> str:
            async with GenhubClient(url=f"{server.url}/graphql") as anonymous:
                login = (await anonymous.login(DEMO)).login
            assert isinstance(login, LoginLoginAuthPayload), login
            return login.access_token

        yield Api(f"{server.url}/graphql", "ws" + server.url.removeprefix("http") + "/graphql", asyncio.run(sign_in()))


CREATE_KEY = """mutation ($input: CreateApiKeyInput!) { createApiKey(input: $input) {
  __typename ... on CreateApiKeySuccess { key } ... on Error { code message } } }"""


def create_api_key(api: Api, scopes: list[str]) -> str:
    """A key of the demo account (made with its signed-in session, as keys must be)."""
    variables = {"input": {"name": f"sdk-{uuid.uuid4().hex[:8]}", "scopes": scopes}}
    answer = httpx.post(
        api.url,
        json={"query": CREATE_KEY, "variables": variables},
        headers={"Authorization": f"Bearer {api.token}"},
        timeout=10,
    ).json()
    created = answer["data"]["createApiKey"]
    assert created["__typename"] == "CreateApiKeySuccess", created
    return str(created["key"])


def register(api: Api) -> str:
    """A new account's access token (it has no credits)."""
    credentials = {"email": f"partner-{uuid.uuid4().hex[:12]}@example.com", "password": "a long password 1"}
    answer = httpx.post(api.url, json={"query": REGISTER, "variables": {"input": credentials}}, timeout=10).json()
    return str(answer["data"]["register"]["accessToken"])


async def test_a_partner_signs_in_starts_a_generation_watches_it_and_reads_it_back(api: Api) -> None:
    # given a client signed in as the demo account
    async with GenhubClient(url=api.url) as anonymous:
        login = (await anonymous.login(DEMO)).login
    assert isinstance(login, LoginLoginAuthPayload) and login.user.email == DEMO.email
    async with api.client(login.access_token) as genhub:
        model = (await genhub.image_models()).models[0]
        before = (await genhub.credits()).credits

        # when it starts a generation and follows it over WebSocket
        new = GenerateInput(model_id=model.id, prompt="a lighthouse at dawn", idempotency_key=str(uuid.uuid4()))
        started = (await genhub.generate(new)).generate
        assert isinstance(started, GenerateGenerateGenerateSuccess), started
        statuses = []
        async with asyncio.timeout(60):
            async for event in genhub.watch(started.generation.id):
                statuses.append(event.generation_updated.generation.status)
        read = (await genhub.generation(started.generation.id)).generation
        after = (await genhub.credits()).credits
        replay = (await genhub.generate(new)).generate

    # then every answer is typed, the stream settled on SUCCEEDED and the cost was taken once
    assert statuses[-1] is GenerationStatus.SUCCEEDED
    assert read is not None and read.status is GenerationStatus.SUCCEEDED and read.prompt == new.prompt
    assert read.charged_credits == read.reserved_credits == model.cost_credits
    assert read.outputs and read.outputs[0].content_type.startswith("image/")
    assert after.balance == before.balance - model.cost_credits
    assert isinstance(replay, GenerateGenerateGenerateSuccess) and replay.generation.id == started.generation.id


async def test_refusals_arrive_as_the_typed_members_of_each_union(api: Api) -> None:
    async with api.client(api.token) as genhub:
        model = (await genhub.image_models()).models[0]
        unknown_model = (await genhub.generate(GenerateInput(model_id=str(uuid.uuid4()), prompt="x"))).generate
        empty_prompt = (await genhub.generate(GenerateInput(model_id=model.id, prompt=""))).generate
        key = str(uuid.uuid4())
        first = (await genhub.generate(GenerateInput(model_id=model.id, prompt="one", idempotency_key=key))).generate
        other_input = (
            await genhub.generate(GenerateInput(model_id=model.id, prompt="two", idempotency_key=key))
        ).generate
    async with GenhubClient(url=api.url) as anonymous:
        wrong_password = (await anonymous.login(LoginInput(email=DEMO.email, password="not the password"))).login

    assert isinstance(unknown_model, GenerateGenerateNotFound) and unknown_model.code == "NOT_FOUND"
    assert isinstance(empty_prompt, GenerateGenerateInvalidInput) and empty_prompt.code == "INVALID_INPUT"
    assert isinstance(first, GenerateGenerateGenerateSuccess)
    assert isinstance(other_input, GenerateGenerateInvalidInput)  # a replayed key with another prompt
    assert isinstance(wrong_password, LoginLoginInvalidCredentials | LoginLoginRateLimited)


async def test_another_account_reads_nothing_of_the_generation(api: Api) -> None:
    # given a generation of the demo account
    async with api.client(api.token) as owner:
        model = (await owner.image_models()).models[0]
        started = (await owner.generate(GenerateInput(model_id=model.id, prompt="mine"))).generate
    assert isinstance(started, GenerateGenerateGenerateSuccess)

    # when another account asks for it, and cancels it
    async with api.client(register(api)) as stranger:
        read = (await stranger.generation(started.generation.id)).generation
        cancel = (await stranger.cancel_generation(started.generation.id)).cancel_generation

    # then it is not there for them
    assert read is None
    assert cancel.typename__ == "NotFound"


async def test_request_errors_raise_typed_exceptions(api: Api) -> None:
    # a request without a token is refused as a GraphQL error, not a union member
    async with api.client() as anonymous:
        with pytest.raises(GraphQLClientGraphQLMultiError) as refused:
            await anonymous.credits()
    assert refused.value.errors[0].extensions is not None
    assert refused.value.errors[0].extensions["code"] == "UNAUTHENTICATED"
    # a forged token likewise
    async with api.client("not-a-token") as forged:
        with pytest.raises(GraphQLClientGraphQLMultiError):
            await forged.credits()


async def test_an_upload_needs_the_preflight_header(api: Api) -> None:
    def photo() -> Upload:
        return Upload(
            filename="photo.png", content=io.BytesIO(render_png("sdk", width=16, height=16)), content_type="image/png"
        )

    async with api.client(api.token) as genhub:
        with pytest.raises(GraphQLClientHttpError) as without:
            await genhub.upload_chunk(photo())
        uploaded = (await genhub.upload_chunk(photo(), headers={"GraphQL-Require-Preflight": "1"})).upload_chunk

    assert without.value.status_code == 400
    assert isinstance(uploaded, UploadChunkUploadChunkUploadChunkSuccess)
    assert uploaded.chunk.content_type == "image/png" and uploaded.chunk.sha_256


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(email=st.text(max_size=80), password=st.text(max_size=80))
def test_any_credentials_get_a_typed_answer(api: Api, email: str, password: str) -> None:
    # given arbitrary text as credentials (control characters, surrogates, nothing at all)
    async def attempt() -> object:
        async with GenhubClient(url=api.url) as anonymous:
            try:
                return (await anonymous.login(LoginInput(email=email, password=password))).login
            except GraphQLClientGraphQLMultiError as refused:  # text the API refuses before any field runs
                return refused

    answer = asyncio.run(attempt())

    # then the answer is one of the typed refusals: never a payload the models cannot read
    if isinstance(answer, GraphQLClientGraphQLMultiError):
        assert answer.errors[0].extensions and answer.errors[0].extensions["code"] in {"BAD_REQUEST", "INVALID_INPUT"}
    else:
        assert isinstance(answer, LoginLoginInvalidCredentials | LoginLoginInvalidInput | LoginLoginRateLimited)


async def test_an_api_key_takes_the_tokens_place_within_its_scopes(api: Api) -> None:
    # given a key that may read and generate, and one that may only read
    generating, reading = create_api_key(api, ["read", "generate"]), create_api_key(api, ["read"])

    # when each starts a generation through the client, and the first watches it
    async with api.client(generating) as partner:
        model = (await partner.image_models()).models[0]
        started = (await partner.generate(GenerateInput(model_id=model.id, prompt="by key"))).generate
        assert isinstance(started, GenerateGenerateGenerateSuccess), started
        async with asyncio.timeout(60):
            statuses = [e.generation_updated.generation.status async for e in partner.watch(started.generation.id)]
    async with api.client(reading) as reader:
        listed = (await reader.image_models()).models
        with pytest.raises(GraphQLClientGraphQLMultiError) as refused:
            await reader.generate(GenerateInput(model_id=model.id, prompt="out of scope"))

    # then the key works over HTTP and WebSocket, and a scope it lacks is FORBIDDEN
    assert statuses[-1] is GenerationStatus.SUCCEEDED
    assert listed
    assert refused.value.errors[0].extensions is not None
    assert refused.value.errors[0].extensions["code"] == "FORBIDDEN"


def expect_forbidden(refused: pytest.ExceptionInfo[GraphQLClientGraphQLMultiError]) -> None:
    assert refused.value.errors[0].extensions is not None
    assert refused.value.errors[0].extensions["code"] == "FORBIDDEN"


async def test_a_partner_manages_its_api_keys_through_the_client(api: Api) -> None:
    # given a new account, signed in
    token = register(api)
    async with api.client(token) as owner:
        # when it creates a key, uses it, lists its keys and revokes it (twice)
        input_ = CreateApiKeyInput(name="ci", scopes=["read"])
        created = (await owner.create_api_key(input_)).create_api_key
        assert isinstance(created, CreateApiKeyCreateApiKeyCreateApiKeySuccess), created
        async with api.client(created.key) as by_key:
            credits = (await by_key.credits()).credits
            with pytest.raises(GraphQLClientGraphQLMultiError) as key_making_keys:
                await by_key.create_api_key(CreateApiKeyInput(name="child", scopes=["read"]))
        listed = (await owner.api_keys()).api_keys
        revoked = (await owner.revoke_api_key(created.api_key.id)).revoke_api_key
        again = (await owner.revoke_api_key(created.api_key.id)).revoke_api_key
        unknown = (await owner.revoke_api_key(str(uuid.uuid4()))).revoke_api_key
        no_scope = (await owner.create_api_key(CreateApiKeyInput(name="none", scopes=[]))).create_api_key
    async with api.client(created.key) as revoked_key:
        with pytest.raises(GraphQLClientGraphQLMultiError) as after_revocation:
            await revoked_key.credits()

    # then the key worked within its scope until revoked, and every answer is typed
    assert created.key.startswith(created.api_key.prefix) and created.api_key.scopes == ["read"]
    assert credits.balance == 0
    expect_forbidden(key_making_keys)  # a key cannot make keys
    assert [(k.id, k.revoked_at) for k in listed] == [(created.api_key.id, None)]
    assert isinstance(revoked, RevokeApiKeyRevokeApiKeyRevokeApiKeySuccess) and revoked.changed
    assert revoked.api_key.revoked_at is not None
    assert isinstance(again, RevokeApiKeyRevokeApiKeyRevokeApiKeySuccess) and not again.changed
    assert isinstance(unknown, RevokeApiKeyRevokeApiKeyNotFound)
    assert isinstance(no_scope, CreateApiKeyCreateApiKeyInvalidInput)
    assert after_revocation.value.errors[0].extensions is not None
    assert after_revocation.value.errors[0].extensions["code"] == "UNAUTHENTICATED"


@pytest.fixture
def newcomer(api: Api) -> str:
    """A new account's access token."""
    return register(api)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(max_size=120), scopes=st.lists(st.text(max_size=20), max_size=4))
def test_any_key_name_and_scopes_get_a_typed_answer(api: Api, newcomer: str, name: str, scopes: list[str]) -> None:
    # given a new account (one for every example: accounts are rate limited), any name and scopes
    async def attempt() -> object:
        async with api.client(newcomer) as owner:
            try:
                return (await owner.create_api_key(CreateApiKeyInput(name=name, scopes=scopes))).create_api_key
            except GraphQLClientGraphQLMultiError as refused:  # text the API refuses before any field runs
                return refused

    answer = asyncio.run(attempt())

    # then a key only for a real name and known, non-admin scopes; else a typed refusal
    if isinstance(answer, GraphQLClientGraphQLMultiError):
        assert answer.errors[0].extensions and answer.errors[0].extensions["code"] == "BAD_REQUEST"
    elif isinstance(answer, CreateApiKeyCreateApiKeyCreateApiKeySuccess):
        assert scopes and set(scopes) <= {"read", "generate", "upload"} and name.strip()
    else:
        assert isinstance(answer, CreateApiKeyCreateApiKeyInvalidInput | CreateApiKeyCreateApiKeyQuotaExceeded)


T = TypeVar("T")


async def until(probe: Callable[[], Awaitable[T | None]], *, timeout: float = 20) -> T:
    """The first answer of `probe` that is not None, asked again until `timeout`."""
    deadline = time.monotonic() + timeout
    while (found := await probe()) is None:
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)
    return found


async def test_a_partner_registers_an_endpoint_reads_the_log_rotates_and_redelivers(
    api: Api, webhook_inbox: WebhookInbox
) -> None:
    # given the demo account (it has credits), signed in, and a receiver that answers 200
    name = uuid.uuid4().hex
    async with api.client(api.token) as owner:
        endpoint_input = CreateWebhookEndpointInput(
            url=webhook_inbox.url("ok", name), events=[WebhookEventType.GENERATION_COMPLETED], description="sdk"
        )
        # when it registers an endpoint for completions and a generation completes
        created = (await owner.create_webhook_endpoint(endpoint_input)).create_webhook_endpoint
        assert isinstance(created, CreateWebhookEndpointCreateWebhookEndpointCreateWebhookEndpointSuccess), created
        endpoints = (await owner.webhook_endpoints()).webhook_endpoints
        model = (await owner.image_models()).models[0]
        started = (await owner.generate(GenerateInput(model_id=model.id, prompt="a webhook"))).generate
        assert isinstance(started, GenerateGenerateGenerateSuccess), started
        mine = WebhookDeliveryFilter(endpoint_id=created.endpoint.id)

        async def delivered() -> WebhookDeliveriesWebhookDeliveriesEdgesNode | None:
            edges = (await owner.webhook_deliveries(first=10, filter_=mine)).webhook_deliveries.edges
            done = [e.node for e in edges if e.node.status is WebhookDeliveryStatus.DELIVERED]
            return done[0] if done else None

        delivery = await until(delivered)
        # and it rotates the endpoint's secret and has the delivery sent again
        rotated = (await owner.rotate_webhook_secret(created.endpoint.id, overlap_minutes=60)).rotate_webhook_secret
        again = (await owner.redeliver_webhook(delivery.id)).redeliver_webhook
        await until(lambda: _received(webhook_inbox, name, 2))
        missing = (await owner.redeliver_webhook(str(uuid.uuid4()))).redeliver_webhook
        hostile = (
            await owner.create_webhook_endpoint(
                CreateWebhookEndpointInput(
                    url="http://169.254.169.254/latest/meta-data", events=[WebhookEventType.GENERATION_COMPLETED]
                )
            )
        ).create_webhook_endpoint
    # and another account and a read-scoped key of the owner try the same things
    async with api.client(register(api)) as stranger:
        their_log = (await stranger.webhook_deliveries(first=10)).webhook_deliveries.edges
        their_redelivery = (await stranger.redeliver_webhook(delivery.id)).redeliver_webhook
        their_rotation = (await stranger.rotate_webhook_secret(created.endpoint.id)).rotate_webhook_secret
    async with api.client(create_api_key(api, ["read"])) as reader:
        read_by_key = (await reader.webhook_deliveries(first=10, filter_=mine)).webhook_deliveries.edges
        with pytest.raises(GraphQLClientGraphQLMultiError) as key_registering:
            await reader.create_webhook_endpoint(endpoint_input)

    # then the completion arrived signed with the first secret, and again, with the same id,
    # signed with both secrets during the overlap
    first, second = webhook_inbox.received(name)[:2]
    now = int(time.time())
    assert created.secret.startswith("whsec_") and created.endpoint.id in [e.id for e in endpoints]
    assert delivery.event_type is WebhookEventType.GENERATION_COMPLETED
    assert delivery.generation_id == started.generation.id and delivery.attempts == 1
    assert delivery.last_status_code == 200 and first.headers["webhook-id"] == delivery.message_id
    assert verify(created.secret, first.headers, first.body, now=now)
    assert isinstance(rotated, RotateWebhookSecretRotateWebhookSecretRotateWebhookSecretSuccess)
    assert rotated.rotation.secret != created.secret and rotated.rotation.previous_secret_expires_at is not None
    assert isinstance(again, RedeliverWebhookRedeliverWebhookRedeliverWebhookSuccess)
    assert again.delivery.message_id == delivery.message_id == second.headers["webhook-id"]
    assert verify(rotated.rotation.secret, second.headers, second.body, now=now)
    assert verify(created.secret, second.headers, second.body, now=now)
    # and nobody else reaches the endpoint or the log; a key reads the log but registers nothing
    assert isinstance(missing, RedeliverWebhookRedeliverWebhookNotFound)
    assert isinstance(hostile, CreateWebhookEndpointCreateWebhookEndpointInvalidInput)
    assert [f.field for f in hostile.fields] == ["url"]
    assert their_log == [] and isinstance(their_redelivery, RedeliverWebhookRedeliverWebhookNotFound)
    assert isinstance(their_rotation, RotateWebhookSecretRotateWebhookSecretNotFound)
    assert [e.node.id for e in read_by_key if e.node.id == delivery.id] == [delivery.id]
    expect_forbidden(key_registering)


async def _received(inbox: WebhookInbox, name: str, count: int) -> bool | None:
    return True if len(inbox.received(name)) >= count else None
