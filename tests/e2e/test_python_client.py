"""The generated Python client (sdk/python/genhub_client) against a real `genhub serve`.

It is imported from the checkout as a partner gets it after `pip install ./sdk/python`; its
runtime dependencies (httpx, pydantic, websockets) are the project's. Every answer comes back
typed: the members of a result union as classes of their own, request errors as exceptions.
"""

from __future__ import annotations

import asyncio
import io
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infrastructure.providers.png import render_png
from tests.fixtures.server import serve

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "sdk" / "python"))

from genhub_client import (
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
    Upload,
    UploadChunkUploadChunkUploadChunkSuccess,
)
from genhub_client.enums import GenerationStatus

pytestmark = pytest.mark.slow

SERVER_ENV = {"SIMULATED_STEPS": "2", "SIMULATED_STEP_SECONDS": "0.1", "POLL_INTERVAL_SECONDS": "1"}
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
