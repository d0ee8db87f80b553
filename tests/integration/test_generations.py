"""generate / cancel / reads on PostgreSQL: money is exact under concurrency, failures are typed."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from domain.credits import CreditBalance
from domain.pagination import PageRequest
from tests.fixtures.app import (
    GraphQLClient,
    SettingsFactory,
    operator_grant,
    operator_model,
    register_user,
    running_app,
)

pytestmark = pytest.mark.postgres

GENERATE = """
mutation Generate($input: GenerateInput!) {
  generate(input: $input) {
    __typename
    ... on GenerateSuccess { generation { id status reservedCredits prompt params model { slug } } }
    ... on InsufficientCredits { required available }
    ... on InvalidInput { fields { field message } }
    ... on Error { code message }
  }
}
"""
CANCEL = """
mutation Cancel($id: ID!) {
  cancelGeneration(id: $id) {
    __typename
    ... on CancelSuccess { generation { id status error { code } } }
    ... on Error { code message }
  }
}
"""
CREDITS = "query Credits { credits { balance reserved available } }"
GENERATION = "query One($id: ID!) { generation(id: $id) { id status } }"


async def admin_setup(client: GraphQLClient, *, cost: int = 10, capabilities: dict[str, Any] | None = None) -> str:
    caps = (
        capabilities
        if capabilities is not None
        else {"params": {"steps": {"type": "int", "min": 1, "max": 50}}, "maxInputs": 2}
    )
    return await operator_model(client, cost=cost, capabilities=caps, name="Test model")


grant = operator_grant


async def ledger_consistent(client: GraphQLClient, user_id: str) -> tuple[CreditBalance, CreditBalance]:
    async with client.container.uow() as uow:
        account = await uow.credits.balance(uuid.UUID(user_id))
        totals = await uow.credits.ledger_totals(uuid.UUID(user_id))
    return account, totals


@pytest.fixture
async def client(clean_postgres: str, make_settings: SettingsFactory) -> AsyncIterator[GraphQLClient]:
    settings = make_settings(database_url=clean_postgres, rate_limit_generate=10_000, simulated_mode="hang")
    async with running_app(settings) as c:
        yield c


def gen_input(model_id: str, **extra: Any) -> dict[str, Any]:
    return {"input": {"modelId": model_id, "prompt": "a quiet harbour [hang]", **extra}}


async def test_200_concurrent_generates_against_37_worth_of_credits(client: GraphQLClient) -> None:
    # given a balance worth exactly 37 generations
    model_id = await admin_setup(client, cost=10)
    user = await register_user(client, "many@example.com")
    await grant(client, user["user"]["id"], 370)
    me = client.as_user(user["accessToken"])
    # when 200 generate calls race
    results = await asyncio.gather(*[me.execute(GENERATE, gen_input(model_id)) for _ in range(200)])
    kinds = [r["data"]["generate"]["__typename"] for r in results]
    # then exactly 37 succeed and the rest are told how much is missing
    assert kinds.count("GenerateSuccess") == 37
    assert kinds.count("InsufficientCredits") == 163
    refused = next(r["data"]["generate"] for r in results if r["data"]["generate"]["__typename"] != "GenerateSuccess")
    assert (refused["code"], refused["required"], refused["available"]) == ("INSUFFICIENT_CREDITS", 10, 0)
    # and the ledger is exact: balance == sum(ledger), reserved == open reservations
    account, totals = await ledger_consistent(client, user["user"]["id"])
    assert account == totals
    assert account.available == 0 and account.reserved == 370
    credits = (await me.execute(CREDITS))["data"]["credits"]
    assert credits["available"] == 0


async def test_50_concurrent_replays_of_one_key_make_one_generation(client: GraphQLClient) -> None:
    model_id = await admin_setup(client, cost=10)
    user = await register_user(client, "replay@example.com")
    await grant(client, user["user"]["id"], 1000)
    me = client.as_user(user["accessToken"])
    results = await asyncio.gather(
        *[me.execute(GENERATE, gen_input(model_id, idempotencyKey="same")) for _ in range(50)]
    )
    ids = {r["data"]["generate"]["generation"]["id"] for r in results}
    assert len(ids) == 1
    account, totals = await ledger_consistent(client, user["user"]["id"])
    assert account == totals
    assert account.balance - account.available == 10 or account.balance == 990  # one reservation (maybe captured)
    async with client.container.uow() as uow:
        entries = await uow.credits.ledger_page(uuid.UUID(user["user"]["id"]), PageRequest(100))
    assert [e.kind.value for e in entries.items].count("reserve") == 1


async def test_replay_after_completion_returns_the_same_generation(client: GraphQLClient) -> None:
    model_id = await admin_setup(client, cost=5)
    user = await register_user(client, "later@example.com")
    await grant(client, user["user"]["id"], 5)
    me = client.as_user(user["accessToken"])
    first = (await me.execute(GENERATE, gen_input(model_id, idempotencyKey="k1")))["data"]["generate"]
    second = (await me.execute(GENERATE, gen_input(model_id, idempotencyKey="k1")))["data"]["generate"]
    assert first["generation"]["id"] == second["generation"]["id"]
    # a different user may use the same key independently
    other = await register_user(client, "other-key@example.com")
    result = await client.as_user(other["accessToken"]).execute(GENERATE, gen_input(model_id, idempotencyKey="k1"))
    assert result["data"]["generate"]["__typename"] == "InsufficientCredits"


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"prompt": "   "}, "prompt"),
        ({"prompt": "x" * 5000}, "prompt"),
        ({"params": {"steps": 500}}, "params.steps"),
        ({"params": {"unknown": 1}}, "params.unknown"),
        ({"params": [1, 2]}, "params"),
        ({"idempotencyKey": "k" * 200}, "idempotencyKey"),
        ({"presetId": "not-a-uuid"}, "presetId"),
        # text PostgreSQL cannot store: a NUL, an unpaired surrogate (JSON may escape one)
        ({"prompt": "a quiet\x00harbour"}, "prompt"),
        ({"idempotencyKey": "key\x00"}, "idempotencyKey"),
        ({"params": {"steps": True}}, "params.steps"),
    ],
)
async def test_generate_rejects_malformed_input(client: GraphQLClient, extra: dict[str, Any], field: str) -> None:
    model_id = await admin_setup(client)
    user = await register_user(client, f"bad-{uuid.uuid4().hex[:6]}@example.com")
    await grant(client, user["user"]["id"], 100)
    body = await client.as_user(user["accessToken"]).execute(
        GENERATE, {"input": {**gen_input(model_id)["input"], **extra}}
    )
    result = body["data"]["generate"]
    assert result["__typename"] == "InvalidInput", result
    assert field in [f["field"] for f in result["fields"]]
    account, _ = await ledger_consistent(client, user["user"]["id"])
    assert account == CreditBalance(100, 0)  # nothing reserved


async def test_generate_missing_model_preset_board_chunk(client: GraphQLClient) -> None:
    model_id = await admin_setup(client)
    user = await register_user(client, "missing@example.com")
    await grant(client, user["user"]["id"], 100)
    me = client.as_user(user["accessToken"])
    missing = str(uuid.uuid4())
    for extra in ({"modelId": missing}, {"presetId": missing}, {"boardId": missing}, {"inputChunkIds": [missing]}):
        result = (await me.execute(GENERATE, {"input": {**gen_input(model_id)["input"], **extra}}))["data"]["generate"]
        assert result["__typename"] == "NotFound", (extra, result)


async def test_generate_needs_a_token(client: GraphQLClient) -> None:
    model_id = await admin_setup(client)
    body = await client.execute(GENERATE, gen_input(model_id), expect_errors=True)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_rate_limited_generate(clean_postgres: str, make_settings: SettingsFactory) -> None:
    settings = make_settings(database_url=clean_postgres, rate_limit_generate=2, simulated_mode="hang")
    async with running_app(settings) as client:
        model_id = await admin_setup(client, cost=0)
        user = await register_user(client, "fast@example.com")
        me = client.as_user(user["accessToken"])
        kinds = [(await me.execute(GENERATE, gen_input(model_id)))["data"]["generate"]["__typename"] for _ in range(3)]
        assert kinds == ["GenerateSuccess", "GenerateSuccess", "RateLimited"]


async def test_cancel_releases_the_reservation_once(client: GraphQLClient) -> None:
    model_id = await admin_setup(client, cost=10)
    user = await register_user(client, "cancel@example.com")
    await grant(client, user["user"]["id"], 10)
    me = client.as_user(user["accessToken"])
    gen_id = (await me.execute(GENERATE, gen_input(model_id)))["data"]["generate"]["generation"]["id"]
    # concurrent cancels: one wins, the others see a final generation
    results = await asyncio.gather(*[me.execute(CANCEL, {"id": gen_id}) for _ in range(5)])
    kinds = sorted(r["data"]["cancelGeneration"]["__typename"] for r in results)
    assert kinds == ["CancelSuccess"] + ["InvalidState"] * 4
    account, totals = await ledger_consistent(client, user["user"]["id"])
    assert account == totals == CreditBalance(10, 0)


async def test_cancel_of_someone_elses_or_missing_generation_is_not_found(client: GraphQLClient) -> None:
    model_id = await admin_setup(client, cost=0)
    owner = await register_user(client, "owner@example.com")
    intruder = await register_user(client, "intruder@example.com")
    gen_id = (await client.as_user(owner["accessToken"]).execute(GENERATE, gen_input(model_id)))["data"]["generate"][
        "generation"
    ]["id"]
    stranger = client.as_user(intruder["accessToken"])
    for target in (gen_id, str(uuid.uuid4()), "not-a-uuid"):
        result = (await stranger.execute(CANCEL, {"id": target}))["data"]["cancelGeneration"]
        assert result["__typename"] == "NotFound"
    assert (await stranger.execute(GENERATION, {"id": gen_id}))["data"]["generation"] is None


async def test_generations_page_costs_a_constant_number_of_statements(
    clean_postgres: str, make_settings: SettingsFactory
) -> None:
    from sqlalchemy import event

    # no scheduled polling during the count: only the query's own statements hit the engine
    settings = make_settings(database_url=clean_postgres, poll_interval_seconds=3600, simulated_mode="hang")
    async with running_app(settings) as client:
        await _count_page_statements(client, event)


async def _count_page_statements(client: GraphQLClient, event: Any) -> None:
    model_id = await admin_setup(client, cost=0)
    user = await register_user(client, "pages@example.com")
    me = client.as_user(user["accessToken"])
    query = """query Page($first: Int!) { generations(first: $first) { edges { node {
        id status model { slug } preset { name } board { name } inputs { id } outputs { id url } error { code }
    } } pageInfo { hasNextPage endCursor } } }"""
    for _ in range(100):
        await me.execute(GENERATE, gen_input(model_id))
    await client.container.broker.wait_all()  # the in-process submit tasks are done
    counts: list[int] = []

    def count(*_: object) -> None:
        counts[-1] += 1

    engine = client.container.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        for size in (5, 100):
            counts.append(0)
            body = await me.execute(query, {"first": size})
            assert len(body["data"]["generations"]["edges"]) == size
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert counts[0] == counts[1], counts
    assert counts[1] <= 8, counts


async def test_pagination_is_stable_and_capped(client: GraphQLClient) -> None:
    model_id = await admin_setup(client, cost=0)
    user = await register_user(client, "cursor@example.com")
    me = client.as_user(user["accessToken"])
    created = [
        (await me.execute(GENERATE, gen_input(model_id)))["data"]["generate"]["generation"]["id"] for _ in range(7)
    ]
    seen: list[str] = []
    after = None
    while True:
        q = "query ($after: String) { generations(first: 3, after: $after) { edges { node { id } } pageInfo { hasNextPage endCursor } } }"
        page = (await me.execute(q, {"after": after}))["data"]["generations"]
        seen += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == list(reversed(created))
    capped = await me.execute("{ generations(first: 101) { edges { cursor } } }", expect_errors=True)
    assert capped["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    bad_cursor = await me.execute('{ generations(after: "garbage!") { edges { cursor } } }', expect_errors=True)
    assert bad_cursor["errors"][0]["extensions"]["code"] == "INVALID_INPUT"


STRING_AND_NUMBER = {"params": {"style": {"type": "string"}, "scale": {"type": "number", "min": 0}}}


def literal_generate(model_id: str, fields: str) -> str:
    """A generate with its input written in the document (what JSON variables cannot carry)."""
    return (
        'mutation { generate(input: {modelId: "' + model_id + '", ' + fields + "}) {"
        " __typename ... on InvalidInput { fields { field message } } } }"
    )


async def test_generate_refuses_what_postgresql_cannot_store(client: GraphQLClient) -> None:
    # given a model with a string and a number parameter, and a user with credits
    model_id = await admin_setup(client, capabilities=STRING_AND_NUMBER)
    user = await register_user(client, "jsonb@example.com")
    await grant(client, user["user"]["id"], 100)
    me = client.as_user(user["accessToken"])
    # when the params hold a NUL in a string, or an infinite number (written in the document:
    # JSON has none), or the prompt an unpaired surrogate (escaped in JSON, as json.dumps does)
    surrogate = json.dumps({"query": GENERATE, "variables": {"input": {"modelId": model_id, "prompt": "a \ud800"}}})
    sent = await client.http.post(
        "/graphql",
        content=surrogate.encode(),
        headers={"content-type": "application/json", "authorization": f"Bearer {user['accessToken']}"},
    )
    answers = [
        await me.execute(GENERATE, gen_input(model_id, params={"style": "a\x00b"})),
        await me.execute(literal_generate(model_id, 'prompt: "a quiet harbour", params: {scale: 1e999}')),
        sent.json(),
    ]
    # then each is a typed InvalidInput naming the field, and nothing is reserved
    problems = []
    for body in answers:
        result = body["data"]["generate"]
        assert result["__typename"] == "InvalidInput", result
        problems += [(f["field"], f["message"]) for f in result["fields"]]
    assert problems == [
        ("params", "must not contain NUL characters (in a string)"),
        ("params", "must hold only finite numbers"),
        ("prompt", "must be valid Unicode text (no unpaired surrogates)"),
    ]
    account, _ = await ledger_consistent(client, user["user"]["id"])
    assert account == CreditBalance(100, 0)


async def test_a_key_reused_for_another_request_is_refused(client: GraphQLClient) -> None:
    # given a generation started with a key
    model_id = await admin_setup(client, cost=10)
    user = await register_user(client, "reuse@example.com")
    await grant(client, user["user"]["id"], 100)
    me = client.as_user(user["accessToken"])
    first = await me.execute(GENERATE, gen_input(model_id, idempotencyKey="k-reuse", params={"steps": 5}))
    first_id = first["data"]["generate"]["generation"]["id"]
    # when the same key comes with another prompt, other params, or at once with both
    other_prompt = {"input": {**gen_input(model_id)["input"], "prompt": "a loud harbour", "idempotencyKey": "k-reuse"}}
    other_params = gen_input(model_id, idempotencyKey="k-reuse", params={"steps": 6})
    answers = await asyncio.gather(me.execute(GENERATE, other_prompt), me.execute(GENERATE, other_params))
    # then each is InvalidInput on idempotencyKey naming the first generation and what differs
    for answer, differs in zip(answers, ("prompt", "params"), strict=True):
        result = answer["data"]["generate"]
        assert result["__typename"] == "InvalidInput", result
        (problem,) = result["fields"]
        assert problem["field"] == "idempotencyKey"
        assert first_id in problem["message"] and differs in problem["message"]
    # and the same request again still replays, with one reservation in all
    again = await me.execute(GENERATE, gen_input(model_id, idempotencyKey="k-reuse", params={"steps": 5}))
    assert again["data"]["generate"]["generation"]["id"] == first_id
    account, totals = await ledger_consistent(client, user["user"]["id"])
    assert account == totals == CreditBalance(100, 10)


async def test_a_replay_answers_even_after_its_model_was_deactivated(client: GraphQLClient) -> None:
    # given a generation started with a key, then its model deactivated
    model_id = await admin_setup(client, cost=10)
    user = await register_user(client, "deactivated@example.com")
    await grant(client, user["user"]["id"], 100)
    me = client.as_user(user["accessToken"])
    first = await me.execute(GENERATE, gen_input(model_id, idempotencyKey="k-gone"))
    async with client.container.uow() as uow:
        model = await uow.catalogue.get_model(uuid.UUID(model_id))
    assert model is not None
    await operator_model(client, slug=model.slug, cost=10, capabilities=model.capabilities, active=False)
    # when the request is replayed, and a new one without a key is tried
    replay = (await me.execute(GENERATE, gen_input(model_id, idempotencyKey="k-gone")))["data"]["generate"]
    fresh = (await me.execute(GENERATE, gen_input(model_id)))["data"]["generate"]
    # then the replay gets the first generation, the new request NotFound, and one reservation stands
    assert replay["generation"]["id"] == first["data"]["generate"]["generation"]["id"]
    assert fresh["__typename"] == "NotFound"
    account, totals = await ledger_consistent(client, user["user"]["id"])
    assert account == totals == CreditBalance(100, 10)
